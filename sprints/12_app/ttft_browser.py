"""`stylefit app` in headless Chromium with the bundled SmolLM2-135M on both sides of Compare: when text first shows in each box.

Run from the repository root: `python sprints/12_app/ttft_browser.py` (after `source tools/env.sh`).
The run folder is fabricated (its final/ links to the bundled model), so no run is needed."""
import json, os, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]/'tests'))
import test_app as T                       # the browser tests' App (subprocess) and Page (error checks)
from playwright.sync_api import sync_playwright
from stylefit.model import resolve_model_dir
from stylefit.prepare import PrepareConfig, prepare, write_prepared
from stylefit.test_utils import write_tiny_blog

root = Path(tempfile.mkdtemp(prefix='ttft_'))
data = root/'prepared'
write_prepared(prepare([write_tiny_blog(root/'blog')], PrepareConfig(out=str(data), tokenizer='none')), data)
run = root/'runs'/'bundled-run'; run.mkdir(parents=True)
(run/'final').symlink_to(resolve_model_dir('bundled'))
(run/'config.json').write_text(json.dumps({'train': {}, 'data': {'base_model': 'bundled'}}))
t0 = time.time(); app = T.App({'root': root, 'data': data, 'run': run}, root/'app.log')
print(f'app answered after {time.time() - t0:.1f} s', flush=True)
try:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=T.CHROMIUM, args=T.CHROMIUM_ARGS)
        pg = T.Page(b, app.url); page = pg.page
        page.get_by_role('tab', name='Compare').click()
        for i in range(3):                 # seenGenerating: the boxes were cleared, so old text does not count
            page.evaluate(T.WATCH_INFO); t0 = time.time(); page.click('#btn-compare')
            page.wait_for_function("() => window.seenGenerating && document.querySelector('#out-base textarea').value.length > 0", timeout=300_000); tb = time.time() - t0
            page.wait_for_function("() => window.seenGenerating && document.querySelector('#out-tuned textarea').value.length > 0", timeout=300_000); tt = time.time() - t0
            page.wait_for_function("() => window.seenGenerating && document.querySelector('#compare-info').innerText.includes('done in')", timeout=300_000)
            print(f'click {i + 1}: base box {tb:.2f} s, fine-tuned box {tt:.2f} s, done {time.time() - t0:.1f} s; '
                  f'the app says: {page.locator("#compare-info").inner_text()}', flush=True)
        pg.check(); b.close()
finally:
    app.stop(); shutil.rmtree(root)
print('load average', os.getloadavg())
