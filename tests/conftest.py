import os
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
import pytest
from stylefit.test_utils import write_tiny_blog, write_tiny_model

@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory):
    "A random-init tiny Llama folder, shared by the session (never modified in place)."
    return write_tiny_model(tmp_path_factory.mktemp('models')/'tiny')

@pytest.fixture
def tiny_blog(tmp_path):
    return write_tiny_blog(tmp_path/'blog', n_posts=24)
