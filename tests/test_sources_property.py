"Property-based tests: readers raise nothing but stylefit errors on arbitrary bytes; cleaning leaves clean text alone."
import tempfile
from pathlib import Path
from hypothesis import HealthCheck, given, settings, strategies as st
from stylefit.core import StylefitError
from stylefit.sources import Document, Skipped, read_jekyll_file
from stylefit.feeds import read_feed_file
from stylefit.books import read_book_file
from stylefit.stories import read_stories_file
from stylefit.greentext import read_greentext_file, read_screenshot
from stylefit.clean import clean_text

READERS = [(read_jekyll_file, '.md'), (read_feed_file, '.xml'), (read_book_file, '.txt'), (read_stories_file, '.txt'),
           (read_greentext_file, '.txt'), (read_greentext_file, '.json'), (read_screenshot, '.png')]
# arbitrary bytes, plus bytes that look like the formats (so the parsers get past the first checks)
PREFIXES = [b'', b'---\ntitle: x\n---\n', b'<?xml version="1.0"?><rss><channel><item><description>', b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>',
            b'<sos>', b'[{"text": ', b'*** START OF THE PROJECT GUTENBERG EBOOK X ***\nCHAPTER I\n', b'\x89PNG\r\n\x1a\n']
data = st.tuples(st.sampled_from(PREFIXES), st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda s: s.encode('utf-8', 'surrogatepass'))))

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data)
def test_readers_raise_only_stylefit_errors(prefix_body):
    prefix, body = prefix_body
    with tempfile.TemporaryDirectory() as d:
        for read, suffix in READERS:
            p = Path(d)/f'f{suffix}'; p.write_bytes(prefix + body)
            try: got = read(p)
            except StylefitError as e: assert str(p) in str(e) and e.reason
            else: assert isinstance(got, (Document, Skipped)) or all(isinstance(x, Document) for x in got)

@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec='utf-8'), max_size=300))
def test_cleaning_is_idempotent(text):
    once = clean_text(text)
    assert clean_text(once) == once

@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.characters(whitelist_categories=('L', 'N', 'P', 'S')), min_size=1, max_size=12), min_size=1, max_size=8)
                .map(' '.join), min_size=1, max_size=5).map('\n\n'.join))
def test_clean_text_is_left_alone(text):
    import unicodedata
    text = unicodedata.normalize('NFC', text)
    assert clean_text(text) == text

@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data, st.sampled_from(['.txt', '.xml', '.json', '.md', '.bin', '']))
def test_guessing_and_reading_any_file_raises_only_stylefit_errors(prefix_body, suffix):
    from stylefit.prepare import KINDS, guess_kind, read_source
    prefix, body = prefix_body
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)/f'f{suffix}'; p.write_bytes(prefix + body)
        for kind in (guess_kind(p),) + tuple(k for k in KINDS if k != 'ocr'):
            try: docs, skipped = read_source(p, kind)
            except StylefitError: continue
            assert all(isinstance(x, Document) for x in docs) and all(isinstance(x, Skipped) for x in skipped)
