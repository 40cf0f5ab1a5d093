"Browser tests of `stylefit app`: the app runs as a subprocess and headless Chromium (Debian's `chromium`) drives it with Playwright."
import hashlib, json, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from playwright.sync_api import sync_playwright
from stylefit.prepare import PrepareConfig, prepare, read_curation, write_prepared
from stylefit.report import plot_losses
from stylefit.sample import SampleConfig, load_for_sampling, sample_texts
from stylefit.test_utils import write_tiny_blog, write_tiny_model

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
PROMPT = 'Now then, shipmates,'
WATCH_INFO = '''() => { window.seenGenerating = false; const info = document.querySelector('#compare-info');
  new MutationObserver(() => { if (info.innerText.includes('generating')) window.seenGenerating = true; })
    .observe(info, {subtree: true, childList: true, characterData: true}); }'''
WATCH_TOASTS = '''window.errorToasts = [];
new MutationObserver(() => document.querySelectorAll('[data-testid="toast-body"].error').forEach(t => {
  if (!t.dataset.seen) { t.dataset.seen = '1'; window.errorToasts.push(t.innerText); } })).observe(document, {subtree: true, childList: true});'''
ROW_JS = '''([source, contains]) => { const rows = {};
  document.querySelectorAll('#examples-table [data-testid^="cell-"]').forEach(c => {
    const [, r, k] = c.dataset.testid.split('-'); (rows[r] ||= [])[+k] = c.innerText.trim(); });
  const row = Object.values(rows).find(r => r[0] === source);
  return row && row.join(' | ').includes(contains) ? row : null; }'''

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def files_digest(*roots) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in sorted(Path(r).rglob('*')) if p.is_file()}

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "A prepared tiny blog (one post dropped as too short), a tiny base model and a run whose final model has other weights."
    root = tmp_path_factory.mktemp('app')
    blog = write_tiny_blog(root/'blog', 12)
    (blog/'_posts'/'2024-03-02-short.md').write_text('---\ntitle: Short\n---\nToo short.\n')
    data = root/'prepared'
    write_prepared(prepare([blog], PrepareConfig(out=str(data), tokenizer='none')), data)
    base = write_tiny_model(root/'base', seed=0)
    run = root/'runs'/'tiny'
    write_tiny_model(run/'final', seed=1)
    history = [{'step': s, 'train_loss': 6 - s / 2, 'val_loss': 5.9 - s / 2} for s in range(1, 5)]
    (run/'config.json').write_text(json.dumps({'train': {'max_steps': 4}, 'data': {'base_model': str(base)}}))
    (run/'results.json').write_text(json.dumps({'base_model': str(base), 'mode': 'full fine-tune', 'ppl_before': 380.5, 'ppl_after': 35.25,
                                                'tokens_per_second': 812.3, 'history': history}))
    plot_losses(history, run/'loss_curves.png'); (run/'report.html').write_text('<h1>stylefit report: tiny</h1>')
    return {'root': root, 'blog': blog, 'data': data, 'base': base, 'run': run}

class App:
    "`stylefit app` in a subprocess, started the way a user starts it."
    def __init__(self, f, log:Path):
        self.port, self.log = free_port(), log
        cmd = [sys.executable, '-c', 'import sys; from stylefit.cli import main; sys.exit(main())', 'app', '--data', str(f['data']),
               '--run', str(f['run']), '--runs_dir', str(f['root']/'runs'), '--port', str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=log.open('w'), stderr=subprocess.STDOUT, cwd=f['root'])
        self.url = f'http://127.0.0.1:{self.port}/'
        for _ in range(600):
            if self.proc.poll() is not None: pytest.fail(f'stylefit app exited with {self.proc.returncode}:\n{log.read_text()}')
            try: urllib.request.urlopen(self.url, timeout=1); return
            except OSError: time.sleep(0.2)
        self.stop(); pytest.fail(f'stylefit app did not answer in 120 s:\n{log.read_text()}')
    def stop(self):
        self.proc.terminate()
        try: self.proc.wait(15)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()

@pytest.fixture(scope='module')
def browser():
    assert Path(CHROMIUM).is_file(), f'{CHROMIUM} is missing: apt-get install -y chromium (tools/test.sh does it)'
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

class Page:
    "A browser page that records console errors, page errors and any request that leaves 127.0.0.1."
    def __init__(self, browser, url):
        self.page, self.errors, self.outside = browser.new_page(), [], []
        self.page.on('console', lambda m: m.type == 'error' and self.errors.append(m.text))
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.page.on('request', lambda r: r.url.startswith(('http://127.0.0.1', 'data:', 'blob:')) or self.outside.append(r.url))
        self.page.add_init_script(WATCH_TOASTS)                        # an error toast fades after 10 s: record each one
        self.page.set_default_timeout(90_000)                          # the 2-core CI machine is slow to boot Gradio's frontend
        self.page.goto(url); self.page.wait_for_selector('#examples-table')
    def check(self):
        "Fail on an error toast, a console or page error, or a request to another host."
        toasts = self.page.evaluate('() => window.errorToasts')
        assert not toasts, f'error toast: {toasts}'
        assert not self.errors, f'browser errors: {self.errors}'
        assert not self.outside, f'requests that left the machine: {self.outside}'
    def choose(self, source:str):
        "Pick an example in the menu by (part of) its source."
        self.page.locator('#example-source input').fill(Path(source).stem)
        self.page.get_by_role('option', name=source).click()
        self.page.wait_for_function("s => document.querySelector('#example-info').innerText.includes(s)", arg=Path(source).name)
    def row_of(self, source:str, contains:str='') -> list[str]:
        "The cells after the source of the table row of `source`, once that row exists and holds `contains`."
        handle = self.page.wait_for_function(ROW_JS, arg=[source, contains])
        return handle.json_value()[1:]

@pytest.fixture(scope='module')
def app(folders, tmp_path_factory):
    "One app process for the tests that need not restart it (the restart test stops it)."
    a = App(folders, tmp_path_factory.mktemp('logs')/'app.log')
    yield a
    a.stop()

def test_compare_streams_two_different_outputs_the_same_for_the_same_seed(folders, browser, app):
    f = folders
    pg = Page(browser, app.url); page = pg.page
    page.get_by_role('tab', name='Compare').click()
    page.fill('#compare-prompt textarea', PROMPT)
    page.fill('#max-new-tokens input[type="number"]', '24'); page.press('#max-new-tokens input[type="number"]', 'Enter')
    page.fill('#seed input', '7'); page.press('#seed input', 'Enter')
    def generate():
        page.evaluate(WATCH_INFO)                                                  # so that a previous 'done' does not count
        page.click('#btn-compare')
        page.wait_for_function("() => window.seenGenerating && document.querySelector('#compare-info').innerText.includes('done in')", timeout=60_000)
        return page.locator('#out-base textarea').input_value(), page.locator('#out-tuned textarea').input_value()
    first = generate()
    assert first[0] and first[1] and first[0] != first[1]
    cfg = SampleConfig(max_new_tokens=24)                                          # the app's defaults, but for these two
    expected = tuple(sample_texts(*load_for_sampling(m), [PROMPT], [7], cfg)[0] for m in (f['base'], f['run']))
    assert first == expected                                                       # exactly what stylefit sample gives
    assert generate() == first                                                     # the same seed, the same outputs
    pg.check()

def test_runs_tab_shows_figures_loss_curves_and_report(folders, browser, app):
    pg = Page(browser, app.url); page = pg.page
    page.get_by_role('tab', name='Runs').click()
    page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('35.25')")
    assert '380.5' in page.locator('#runs-table').inner_text()
    assert page.frame_locator('#run-report iframe').locator('h1').inner_text() == 'stylefit report: tiny'
    page.wait_for_selector('#run-loss img')
    pg.check()

def test_an_error_toast_fails_the_check(folders, browser, app):
    pg = Page(browser, app.url)
    pg.page.click('#btn-reject')                                       # no example chosen: the app says so in a toast
    pg.page.wait_for_function("() => window.errorToasts.length > 0")
    with pytest.raises(AssertionError, match='choose an example first'): pg.check()
    assert not (folders['data']/'curation.jsonl').exists()

def test_reject_and_edit_survive_a_restart(folders, browser, app, tmp_path):
    f = folders; data = f['data']
    sources = [json.loads(l)['source'] for l in (data/'train.jsonl').read_text().splitlines()]
    kept, short = sources[0], str(f['blog']/'_posts'/'2024-03-02-short.md')
    untouched = files_digest(f['blog']) | {p: d for p, d in files_digest(data).items() if 'curation' not in p}
    new_text = 'Now then, shipmates, the short post grew into a proper one, with bread and tide and gulls in it, ' * 2
    try:
        pg = Page(browser, app.url)
        assert pg.row_of(short) == ['dropped', '2', 'too short (2 words < min_words=20)', '']
        pg.choose(kept)
        pg.page.fill('#decision-reason textarea', 'too personal')
        pg.page.click('#btn-reject')
        pg.page.wait_for_function("() => document.querySelector('#example-info').innerText.includes('reject')")
        pg.choose(short)
        assert pg.page.locator('#example-text textarea').input_value() == 'Too short.'
        pg.page.fill('#example-text textarea', new_text)
        pg.page.check('#edit-accept input')
        pg.page.click('#btn-edit')
        pg.page.wait_for_function("() => document.querySelector('#example-info').innerText.includes('edit')")
        assert '2 pending' in pg.page.locator('#curate-status').inner_text()
        pg.check()
    finally: app.stop()
    dec = read_curation(data/'curation.jsonl')                         # what prepare will read
    assert {s: d['action'] for s, d in dec.items()} == {kept: 'reject', short: 'edit'}
    assert dec[kept]['reason'] == 'too personal' and dec[short]['text'] == new_text and dec[short]['accept'] is True
    assert {p: d for p, d in files_digest(f['blog'], data).items() if 'curation' not in p} == untouched
    app = App(f, tmp_path/'app2.log')                                  # a new process: all it knows is on disk
    try:
        pg = Page(browser, app.url)
        assert pg.row_of(kept, 'reject')[-1] == 'reject (pending)' and pg.row_of(short, 'edit')[-1] == 'edit (pending)'
        pg.choose(short)
        assert pg.page.locator('#example-text textarea').input_value() == new_text
        pg.choose(kept)
        assert 'too personal' in pg.page.locator('#example-info').inner_text()
        status = pg.page.locator('#curate-status').inner_text()
        assert '2 pending' in status and f'--out {data}' in status        # and how to apply them
        pg.check()
        write_prepared(prepare([f['blog']], PrepareConfig(out=str(data), tokenizer='none')), data)   # the user runs that command
        pg.page.reload()
        assert pg.row_of(kept, 'rejected in curation') == ['dropped', '46', 'rejected in curation: too personal', 'reject']
        assert pg.row_of(short)[0] in ('train', 'val') and pg.row_of(short)[-1] == 'edit'    # the edited post is now trained on
        assert 'pending' not in pg.page.locator('#curate-status').inner_text()
        pg.check()
    finally: app.stop()

def test_two_processes_recording_decisions_lose_no_row(tmp_path):
    "Two app processes on one prepared folder, writing at the same moment: every decision of both ends up in curation.jsonl."
    data, sync = tmp_path/'prepared', tmp_path/'sync'; data.mkdir(); sync.mkdir()
    code = ('import sys, time; from pathlib import Path; from stylefit.app import record_decision\n'
            'data, sync, k = sys.argv[1:]; (Path(sync)/k).touch()\n'
            'while not (Path(sync)/"go").exists(): time.sleep(0.01)\n'
            'for i in range(150): record_decision(data, f"post{k}-{i}.md", "reject", reason="dup")')
    procs = [subprocess.Popen([sys.executable, '-c', code, str(data), str(sync), str(k)]) for k in (1, 2)]
    while not all((sync/str(k)).exists() for k in (1, 2)) and all(p.poll() is None for p in procs): time.sleep(0.05)
    (sync/'go').touch()                                                      # both imported: start writing together
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert set(read_curation(data/'curation.jsonl')) == {f'post{k}-{i}.md' for k in (1, 2) for i in range(150)}
    assert [p.name for p in data.iterdir()] == ['curation.jsonl']            # no lock or temporary file left behind
