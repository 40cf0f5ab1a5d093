"`stylefit sample`, `stylefit evaluate` and `stylefit report` run as a user would: a subprocess, its exit code and its words."
import json, os, shutil, subprocess, sys
from pathlib import Path
from dataclasses import asdict
import pytest
from stylefit.core import atomic_write_json, atomic_write_text, sample_corpus_dir
from stylefit.sources import read_jekyll
from stylefit.sample import SampleConfig
from stylefit.test_utils import write_tiny_model

def error_lines(r): return [l for l in r.stderr.splitlines() if l.startswith('stylefit: error:')]

def run(module, fn, *args):
    code = f'import sys; from stylefit.{module} import {fn}; sys.exit({fn}(sys.argv[1:]))'
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=300)

@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A finished-looking run folder: tiny random base and fine-tuned models, the sample blog's posts as data."
    root = tmp_path_factory.mktemp('evalrun')
    docs = read_jekyll(sample_corpus_dir())[0][:10]
    base = write_tiny_model(root/'base', [d.text for d in docs])
    rd = root/'run'; write_tiny_model(rd/'final', [d.text for d in docs], seed=1)
    atomic_write_json(rd/'config.json', {'train': {}, 'data': {'base_model': str(base), 'n_prompts': 2},
                                         'sample': asdict(SampleConfig(max_new_tokens=16))})
    for name, part in (('train', docs[:-3]), ('val', docs[-3:])):
        atomic_write_text(rd/'data'/f'{name}.jsonl', ''.join(json.dumps(asdict(d)) + '\n' for d in part))
    return rd

def test_sample_same_seed_same_text_whatever_the_batch(tiny_model, tmp_path):
    (tmp_path/'p.txt').write_text('Tide: low\nNow then, shipmates,\nMind you\n')
    outs = []
    for bs in (1, 3):
        r = run('sample', 'main_sample', '--model', tiny_model, '--prompts', tmp_path/'p.txt', '--n', 2, '--max_new_tokens', 10,
                '--sample_batch_size', bs, '--out', tmp_path/f'{bs}.jsonl')
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append([json.loads(l) for l in (tmp_path/f'{bs}.jsonl').read_text().splitlines()])
    assert outs[0] == outs[1] and len(outs[0]) == 6
    assert [o['seed'] for o in outs[0][:2]] == [1337, 1338]

def test_sample_prints_and_cuts_at_stop_sequence(tiny_model):
    r = run('sample', 'main_sample', '--model', tiny_model, '--prompt', 'Now then,', '--max_new_tokens', 12)
    assert r.returncode == 0 and r.stdout.startswith('--- seed 1337 ---\nNow then,')
    text = r.stdout.split('\n', 1)[1][len('Now then,'):].rstrip('\n')
    stop = text.strip()[:2]
    r = run('sample', 'main_sample', '--model', tiny_model, '--prompt', 'Now then,', '--max_new_tokens', 12, '--stop_sequences', stop)
    assert r.returncode == 0 and r.stdout.split('\n', 1)[1].rstrip('\n') == 'Now then,' + text[:text.index(stop)]

@pytest.mark.parametrize('args, expected', [
    (['--prompt', 'word ' * 300], "prompt 1 is"),
    (['--prompt', 'x', '--prompts', 'p.txt'], 'give exactly one of --prompt TEXT or --prompts FILE'),
    (['--prompts', 'empty.txt'], 'empty.txt: holds no prompts'),
    (['--prompt', 'x', '--temperature', '-1'], 'temperature must be 0 (greedy) or more, got -1.0'),
    (['--prompts', 'long.txt', '--n', '3'], "long.txt: prompt 2 is 1201 tokens; with max_new_tokens 80 it exceeds the model's context (256 tokens)"),
    (['--prompt', 'x', '--n', '0'], 'n must be at least 1, got 0'),
])
def test_sample_bad_input_is_one_line(tiny_model, tmp_path, args, expected):
    (tmp_path/'empty.txt').write_text('\n\n'); (tmp_path/'long.txt').write_text('Tide:\n' + 'word ' * 300 + '\n')
    args = [str(tmp_path/a) if a.endswith('.txt') else a for a in args]
    r = run('sample', 'main_sample', '--model', tiny_model, *args)
    assert r.returncode == 2 and len(error_lines(r)) == 1 and expected in error_lines(r)[0], r.stderr[-2000:]

def test_evaluate_then_report(tiny_run):
    r = run('report', 'main_evaluate', tiny_run, '--eval_samples', 2, '--ppl_context', 128, '--ppl_stride', 64)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tiny_run/'results.json').read_text())
    a = res['audit']
    assert a['perplexity']['base']['tokens'] == a['perplexity']['tuned']['tokens'] > 0
    assert len(a['samples']) == 4 and len(a['style']['measures']) == 10 and a['verdict'] in r.stdout
    html = (tiny_run/'report.html').read_text()
    assert html.count('data:image/png;base64,') == 1 and 'Style audit' in html     # perplexity chart (no loss history here)
    (tiny_run/'report.md').unlink()
    r = run('report', 'main_report', tiny_run)
    assert r.returncode == 0 and a['verdict'] in (tiny_run/'report.md').read_text()

def test_evaluate_bad_run_folders_are_one_line(tiny_run, tmp_path):
    (tmp_path/'r'/'checkpoints').mkdir(parents=True); (tmp_path/'r'/'config.json').write_text('{"train": {}}')
    r = run('report', 'main_evaluate', tmp_path/'r')
    assert r.returncode == 2 and error_lines(r) == [f"stylefit: error: {tmp_path/'r'}: run folder has no final model (final/) and no checkpoint: the run did not finish; train it again"]
    r = run('report', 'main_evaluate', tmp_path/'nope')
    assert r.returncode == 2 and error_lines(r) == [f"stylefit: error: {tmp_path/'nope'}: no such run folder"]
    r = run('report', 'main_report', tmp_path/'r')
    assert r.returncode == 2 and len(error_lines(r)) == 1 and 'results.json: missing' in error_lines(r)[0]

def test_papermill_regenerates_the_report_from_the_evaluation_notebook(tiny_run, tmp_path):
    "What CI does: papermill runs nbs/09_report.ipynb with -p run_dir, which re-evaluates the run and rewrites report.md/html."
    run = tmp_path/'run'; shutil.copytree(tiny_run, run)
    for f in ('results.json', 'report.md', 'report.html', 'perplexity.png'): (run/f).unlink(missing_ok=True)
    nb = Path(__file__).resolve().parent.parent/'nbs'/'09_report.ipynb'
    r = subprocess.run(['papermill', str(nb), str(tmp_path/'out.ipynb'), '-p', 'run_dir', str(run), '-p', 'n_samples', '1', '--log-level', 'WARNING'],
                       capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"injected-parameters"' in (tmp_path/'out.ipynb').read_text()     # the parameters reached the notebook
    a = json.loads((run/'results.json').read_text())['audit']
    assert a['settings']['eval_samples'] == 1 and len(a['samples']) == 2      # n_samples=1 for each of the 2 prompts
    assert a['verdict'] in (run/'report.md').read_text() and '| measure | base model | fine-tuned | held-out human (band) |' in (run/'report.md').read_text()
    assert (run/'report.html').read_text().count('data:image/png;base64,') == 1   # the perplexity chart, inlined
