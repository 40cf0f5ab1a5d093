"`stylefit prepare`, run as a user would: a subprocess, with its exit code, its words and the files it writes."
import http.server, json, os, shutil, subprocess, sys, threading
from pathlib import Path
import pytest
from stylefit.test_utils import tiny_post

FIXTURES = Path(__file__).parent/'fixtures'
BOMB = b'''<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<rss version="2.0"><channel><item><title>t</title><description>&lol4;</description></item></channel></rss>'''

def prepare(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, '-c', 'import sys; from stylefit.prepare import main_prepare; sys.exit(main_prepare())', *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, 'HF_HUB_OFFLINE': '1', **(env or {})}, timeout=300)

def rows(path): return [json.loads(l) for l in Path(path).read_text(encoding='utf-8').splitlines()]

@pytest.fixture
def bad_files(tmp_path):
    "One file of each kind of bad input, as separate sources."
    d = tmp_path/'bad'; d.mkdir()
    (d/'bomb.xml').write_bytes(BOMB)
    (d/'binary.txt').write_bytes(bytes(range(256)) * 8)
    (d/'latin1.txt').write_bytes('Chapter 1\n\nUn café crème, s\'il vous plaît.\n'.encode('latin-1'))
    with open(d/'huge.txt', 'wb') as f:                       # 50 MB on one line: made here, never committed
        for _ in range(50): f.write(b'a' * 2**20)
    return d

def test_good_and_bad_sources_prepare_the_good_and_list_the_bad(tiny_blog, bad_files, tmp_path):
    out = tmp_path/'out'
    srcs = [bad_files/n for n in ('bomb.xml', 'binary.txt', 'latin1.txt', 'huge.txt')]
    r = prepare(tiny_blog, *srcs, '--out', out, '--tokenizer', 'none')
    assert r.returncode == 0, r.stderr
    rep = json.loads((out/'prepare_report.json').read_text())
    skipped = {Path(s['source']).name: s['reason'] for s in rep['files_skipped']}
    assert skipped == {
        '2024-02-01-secret.md': 'published: false',
        'bomb.xml': 'XML declares entities (<!ENTITY>); refused, as entities can expand to gigabytes (billion laughs) or read local files (external entities)',
        'binary.txt': 'binary file (contains NUL bytes), not text',
        'latin1.txt': 'not UTF-8 text (byte 0xe9 at offset 17); re-save it as UTF-8',
        'huge.txt': 'has a single line of 52,428,800 characters (over max_line_chars=200,000): not prose'}
    assert rep['documents_kept'] == 24 and len(rows(out/'train.jsonl')) + len(rows(out/'val.jsonl')) == 24
    for name in skipped: assert name in r.stdout                # the summary names every bad file

@pytest.mark.parametrize('make, message', [
    (lambda p: p/'missing', 'does not exist'),
    (lambda p: (p/'empty').mkdir() or p/'empty', 'folder is empty'),
])
def test_unusable_source_is_one_line_and_writes_nothing(tmp_path, make, message):
    src = make(tmp_path)
    r = prepare(src, '--out', tmp_path/'out', '--tokenizer', 'none')
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f'stylefit: error: {src}: {message}']
    assert not (tmp_path/'out').exists()

@pytest.mark.parametrize('name', ['bomb.xml', 'binary.txt', 'latin1.txt', 'huge.txt'])
def test_a_single_bad_file_is_one_clear_line(bad_files, tmp_path, name):
    r = prepare(bad_files/name, '--out', tmp_path/'out', '--tokenizer', 'none')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith('stylefit: error: only 0 usable document(s)') and f'{name}: ' in r.stderr

def test_split_is_reproducible_and_leak_free(tiny_blog, tmp_path):
    base = (tiny_blog/'_posts'/'2024-01-01-post-0.md').read_text()
    for i in range(3):                                       # near-copies of one post: they must stay on one side
        (tiny_blog/'_posts'/f'2024-04-0{i+1}-copy-{i}.md').write_text(base.replace('Post 0.', f'Post 0, copy {i}.'))
    outs = []
    for k, seed in enumerate((7, 7, 8)):
        outs.append(tmp_path/f'out{k}')
        r = prepare(tiny_blog, '--out', outs[-1], '--seed', seed, '--val_fraction', 0.25, '--near_dup_action', 'group', '--tokenizer', 'none')
        assert r.returncode == 0, r.stderr
    for name in ('train.jsonl', 'val.jsonl'):
        assert (outs[0]/name).read_bytes() == (outs[1]/name).read_bytes()
    reports = [json.loads((o/'prepare_report.json').read_text()) for o in outs[:2]]
    for rep in reports: rep['settings']['prepare'].pop('out')
    assert reports[0] == reports[1]
    assert (outs[0]/'val.jsonl').read_bytes() != (outs[2]/'val.jsonl').read_bytes()
    for out in outs:
        train, val = {r['source'] for r in rows(out/'train.jsonl')}, {r['source'] for r in rows(out/'val.jsonl')}
        assert not train & val and len(train | val) == 27
        group = {s for s in train | val if 'copy' in s or s.endswith('post-0.md')}
        assert len(group) == 4 and (group <= train or group <= val)
    rep = json.loads((outs[0]/'prepare_report.json').read_text())
    assert rep['near_duplicate_groups'] == 1
    r = prepare(tiny_blog, '--out', tmp_path/'dropped', '--tokenizer', 'none')     # the default drops near-duplicates instead
    rep = json.loads((tmp_path/'dropped'/'prepare_report.json').read_text())
    assert rep['dropped_by_reason'] == {'near-duplicate': 3}

def test_report_numbers_match_the_files(tiny_blog, tiny_model, tmp_path):
    from transformers import AutoTokenizer
    out = tmp_path/'out'
    r = prepare(tiny_blog, '--out', out, '--tokenizer', tiny_model, '--format', 'mix', '--mix', 'completion=0.5,instruction=0.25,chat=0.25', '--min_words', 30)
    assert r.returncode == 0, r.stderr
    rep, tok = json.loads((out/'prepare_report.json').read_text()), AutoTokenizer.from_pretrained(tiny_model)
    def texts(row): return [m['content'] for m in row['messages']] if 'messages' in row else [row['prompt'], row['completion']] if 'prompt' in row else [row['text']]
    for split in ('train', 'val'):
        rs, st = rows(out/f'{split}.jsonl'), rep['splits'][split]
        assert st['rows'] == len(rs) == st['documents'] and st['synthetic_rows'] == 0
        assert st['words'] == sum(len(t.split()) for row in rs for t in texts(row))
        assert st['tokens'] == sum(len(tok(t, add_special_tokens=False)['input_ids']) for row in rs for t in texts(row))
    assert rep['documents_read'] == rep['documents_kept'] + rep['documents_dropped'] == 24
    assert rep['documents_kept'] == rep['splits']['train']['rows'] + rep['splits']['val']['rows']
    assert sum(rep['dropped_by_reason'].values()) == len(rep['dropped']) == rep['documents_dropped']
    records = rows(out/'records.jsonl')
    assert len(records) == 24 and sum(r['dropped'] is not None for r in records) == rep['documents_dropped']
    assert (out/'lengths.png').read_bytes()[:4] == b'\x89PNG' and 'lengths.png' in (out/'summary.md').read_text()

def test_records_list_what_the_readers_cut_per_document(tmp_path):
    "Promo lines, a Gutenberg header and footer, Liquid tags: records.jsonl names each cut on the document it came from."
    def words(k): return ' '.join(f'{k}{i}' for i in range(40))   # distinct, so that no document is a near-duplicate
    (tmp_path/'stories.txt').write_text(f'<sos>{words("a")} one.<nl>Please subscribe for PART 2<eos>\n<sos>{words("b")} two.<nl>The end.<eos>\n')
    (tmp_path/'book.txt').write_text('Title: Tides\n\n*** START OF THE PROJECT GUTENBERG EBOOK TIDES ***\n\n'
                                     f'CHAPTER I. Low\n\n{words("c")} low.\n\nCHAPTER II. High\n\n{words("d")} high.\n\n*** END OF THE PROJECT GUTENBERG EBOOK TIDES ***\nLicence text.\n')
    (tmp_path/'site'/'_posts').mkdir(parents=True)
    (tmp_path/'site'/'_posts'/'2024-01-01-a.md').write_text(f'---\ntitle: A\n---\n{words("e")} post.\n\n{{% include footer.html %}}\n')
    out = tmp_path/'out'
    r = prepare(tmp_path/'stories.txt', tmp_path/'book.txt', tmp_path/'site', '--out', out, '--tokenizer', 'none', '--min_words', 5)
    assert r.returncode == 0, r.stderr
    cuts = {Path(x['source']).name: x['changes'] for x in rows(out/'records.jsonl')}
    assert cuts['stories.txt#1'] == ["promo removed: 'Please subscribe for PART 2'"] and cuts['stories.txt#2'] == []
    assert cuts['book.txt#1'] == ['Project Gutenberg header removed (11 words)'] and cuts['book.txt#2'] == ['Project Gutenberg footer removed (11 words)']
    assert cuts['2024-01-01-a.md'] == ["1 Liquid tag removed: '{% include footer.html %}'"]
    train_val = rows(out/'train.jsonl') + rows(out/'val.jsonl')
    assert not any('subscribe' in x['text'] or 'GUTENBERG' in x['text'] or 'include' in x['text'] for x in train_val)

def test_curation_is_honoured_by_the_next_run_and_sources_are_untouched(tiny_blog, tmp_path):
    out = tmp_path/'out'
    assert prepare(tiny_blog, '--out', out, '--tokenizer', 'none').returncode == 0
    first = rows(out/'train.jsonl') + rows(out/'val.jsonl')
    a, b = first[0]['source'], first[1]['source']
    before = Path(b).read_bytes()
    (out/'curation.jsonl').write_text(json.dumps({'source': a, 'action': 'reject', 'reason': 'too personal'}) + '\n' +
                                      json.dumps({'source': b, 'action': 'edit', 'text': 'Now then, shipmates: an edited post. ' * 5}) + '\n')
    r = prepare(tiny_blog, '--out', out, '--tokenizer', 'none')
    assert r.returncode == 0, r.stderr
    second = {row['source']: row for row in rows(out/'train.jsonl') + rows(out/'val.jsonl')}
    assert a not in second and second[b]['text'].startswith('Now then, shipmates: an edited post.')
    assert Path(b).read_bytes() == before and (out/'curation.jsonl').is_file()
    rep = json.loads((out/'prepare_report.json').read_text())
    assert rep['curation']['reject'] == 1 and rep['curation']['edit'] == 1 and rep['dropped_by_reason'] == {'rejected in curation': 1}

class FakeOpenAI(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        assert self.headers.get('Authorization') == 'Bearer sk-local'
        text = 'Now then, shipmates, a synthetic day at the harbour. ' * 3 + req['messages'][1]['content'][-20:].split()[-1]
        data = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': text}, 'finish_reason': 'stop'}]}).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass

def test_synthetic_examples_come_from_the_endpoint_and_stay_out_of_val(tiny_blog, tmp_path):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path/'out'
        r = prepare(tiny_blog, '--out', out, '--tokenizer', 'none', '--synthetic_n', 3, env={
            'STYLEFIT_SYNTHETIC_BASE_URL': f'http://127.0.0.1:{server.server_port}/v1', 'STYLEFIT_SYNTHETIC_API_KEY': 'sk-local'})
    finally: server.shutdown(); server.server_close()
    assert r.returncode == 0, r.stderr
    train, val = rows(out/'train.jsonl'), rows(out/'val.jsonl')
    syn = [x for x in train if x['synthetic']]
    assert [x['source'] for x in syn] == ['synthetic:1', 'synthetic:2', 'synthetic:3'] and not any(x['synthetic'] for x in val)
    rep = json.loads((out/'prepare_report.json').read_text())
    assert rep['synthetic']['generated'] == 3 and rep['splits']['train']['synthetic_rows'] == 3
    assert 'sk-local' not in (out/'prepare_report.json').read_text()

def test_unreachable_endpoint_is_one_line(tiny_blog, tmp_path):
    r = prepare(tiny_blog, '--out', tmp_path/'out', '--tokenizer', 'none', '--synthetic_n', 1, '--synthetic_base_url', 'http://127.0.0.1:9/v1')
    assert r.returncode == 2 and r.stderr.startswith('stylefit: error: http://127.0.0.1:9/v1: cannot reach the endpoint')

def test_every_kind_is_guessed_and_read(tmp_path):
    d = tmp_path/'src'; d.mkdir()
    (d/'feed.xml').write_text('<rss version="2.0"><channel>' + ''.join(f'<item><title>T{i}</title><description><![CDATA[<p>{tiny_post(i)}</p>]]></description></item>' for i in range(3)) + '</channel></rss>')
    (d/'book.txt').write_text(''.join(f'CHAPTER {i+1}\n\n{tiny_post(i + 3)}\n\n' for i in range(3)))
    (d/'stories.txt').write_text(''.join(f'<sos>{tiny_post(i + 6).replace(chr(10), "<nl>")}<nl>Please subscribe!<eos>\n' for i in range(3)))
    (d/'green.json').write_text(json.dumps([[f'>be me {i}', '>' + tiny_post(i + 9)] for i in range(3)]))
    shutil.copy(FIXTURES/'greentext_screenshot.jpg', d/'shot.jpg')
    out = tmp_path/'out'
    r = prepare(*sorted(d.iterdir()), '--out', out, '--tokenizer', 'none', '--min_words', 5, '--val_fraction', 0.2)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out/'prepare_report.json').read_text())
    assert {Path(s['path']).name: (s['kind'], s['documents']) for s in rep['sources']} == {
        'book.txt': ('text', 3), 'feed.xml': ('rss', 3), 'green.json': ('greentext', 3), 'shot.jpg': ('ocr', 1), 'stories.txt': ('stories', 3)}
    all_rows = rows(out/'train.jsonl') + rows(out/'val.jsonl')
    assert len(all_rows) == 13 and not any('subscribe' in x['text'] for x in all_rows)
    assert {x['kind'] for x in all_rows} == {'post', 'chapter', 'story', 'greentext'}

def test_help_lists_the_settings():
    r = prepare('--help')
    assert r.returncode == 0 and '--val_fraction' in r.stdout and '--near_dup_threshold' in r.stdout and 'SOURCE' in r.stdout
    assert 'shorter documents are dropped' in r.stdout and '--val-fraction' in r.stdout     # each setting explained; the spelling of the issue works
    assert '--story_drop_re' in r.stdout and 'whose matches (promo' in r.stdout

def test_a_prepared_folder_trains_with_its_control_tokens(tiny_blog, tiny_model, tmp_path):
    "What prepare writes is what `stylefit train` reads: mixed rows, control tokens added as single tokens, held-out rows measured."
    from transformers import AutoTokenizer
    data = tmp_path/'prepared'
    r = prepare(tiny_blog, '--out', data, '--tokenizer', 'none', '--format', 'mix', '--mix', 'completion=0.5,instruction=0.25,chat=0.25',
                '--control_tokens', '--val_fraction', 0.25)
    assert r.returncode == 0, r.stderr
    run = tmp_path/'run'
    train = 'import sys; from stylefit.cli import parse_args; from stylefit.pipeline import run_pipeline; run_pipeline(*parse_args("train", sys.argv[1:]))'
    t = subprocess.run([sys.executable, '-c', train, '--data', str(data), '--base', str(tiny_model),
                        '--out', str(run), '--max_steps', '2', '--block_size', '32', '--batch_size', '4', '--eval_interval', '2', '--max_new_tokens', '4',
                        '--n_prompts', '1', '--eval_samples', '0'], capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=300)
    assert t.returncode == 0, t.stderr[-2000:]
    assert "added control tokens ['<|post|>'] (embeddings resized)" in t.stdout and 'prepared data: 18 train rows, 6 held-out rows' in t.stdout
    tok = AutoTokenizer.from_pretrained(run/'final')
    assert len(tok('<|post|>', add_special_tokens=False)['input_ids']) == 1
    res = json.loads((run/'results.json').read_text())
    assert res['val_sources'] == [x['source'] for x in rows(data/'val.jsonl')] and res['n_train_docs'] == 18
    assert rows(run/'data'/'train.jsonl') == rows(data/'train.jsonl')          # the run keeps exactly the prepared rows
    assert {('messages' in x, 'prompt' in x) for x in rows(data/'train.jsonl')} == {(False, False), (False, True), (True, False)}
