"Reading a Jekyll site: what is kept, what is skipped, and why."
import pytest
from stylefit.core import DataError
from stylefit.sources import read_jekyll

def test_unpublished_and_drafts_are_excluded(tiny_blog):
    docs, skipped = read_jekyll(tiny_blog)
    assert len(docs) == 24 and all(d.kind == 'post' for d in docs)
    assert not any('Not for anyone' in d.text for d in docs)
    assert [(s.source.rsplit('/', 1)[-1], s.reason) for s in skipped] == [('2024-02-01-secret.md', 'published: false')]

def test_bad_files_are_skipped_with_reasons(tiny_blog):
    (tiny_blog/'_posts'/'2024-03-01-broken.md').write_text('---\ntitle: "unclosed\n---\nText\n')
    (tiny_blog/'_posts'/'2024-03-02-latin1.md').write_bytes('---\ntitle: Café\n---\nCafé\n'.encode('latin-1'))
    docs, skipped = read_jekyll(tiny_blog)
    reasons = {s.source.rsplit('/', 1)[-1]: s.reason for s in skipped}
    assert len(docs) == 24
    assert reasons['2024-03-01-broken.md'].startswith('front matter is not valid YAML')
    assert reasons['2024-03-02-latin1.md'].startswith('not UTF-8 text')

def test_front_matter_fields(tiny_blog):
    doc = read_jekyll(tiny_blog)[0][0]
    assert (doc.title, doc.date, doc.tags) == ('Post 0 about the oven', '2024-01-01', ['tiny'])
    assert doc.text.startswith('Tide: low at 00:15.')

@pytest.mark.parametrize('setup, message', [
    (lambda p: None, 'folder does not exist'),
    (lambda p: p.mkdir(), 'no posts found'),
    (lambda p: p.write_text('x'), 'is a file, not a folder'),
])
def test_unusable_folders_stop_with_one_clear_message(tmp_path, setup, message):
    site = tmp_path/'site'; setup(site)
    with pytest.raises(DataError) as e: read_jekyll(site)
    assert str(e.value) == f'{site}: {message}' or str(e.value).startswith(f'{site}: {message}')
