"The `stylefit` command, run as a user would: a subprocess, with its exit code and its words."
import json, os, subprocess, sys
import pytest

def stylefit(*args, cwd=None):
    return subprocess.run([sys.executable, '-c', 'import sys; from stylefit.cli import main; sys.exit(main())', *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=300)

TINY = ['--block_size', 32, '--batch_size', 4, '--max_steps', 12, '--learning_rate', 3e-3, '--eval_interval', 6, '--max_new_tokens', 8, '--n_prompts', 2]

def test_demo_end_to_end_skips_bad_files_and_reports_them(tiny_blog, tiny_model, tmp_path):
    (tiny_blog/'_posts'/'2024-03-01-broken.md').write_text('---\ntitle: "unclosed\n---\nText\n')
    (tiny_blog/'_posts'/'2024-03-02-latin1.md').write_bytes(b'---\ntitle: x\n---\nCaf\xe9\n')
    out = tmp_path/'run'
    r = stylefit('demo', '--data_dir', tiny_blog, '--base_model', tiny_model, '--out_dir', out, *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'skipped ' in r.stdout and '2024-03-01-broken.md: front matter is not valid YAML' in r.stdout
    res = json.loads((out/'results.json').read_text())
    assert res['ppl_after'] < res['ppl_before']
    assert {'base_model', 'ppl_before', 'ppl_after', 'train_tokens', 'train_seconds', 'tokens_per_second', 'peak_rss_mb', 'samples'} <= res.keys()
    assert len(res['samples']) == 2 and all(s.keys() == {'prompt', 'before', 'after'} for s in res['samples'])
    assert {s['reason'] for s in res['skipped']} >= {'published: false', 'not UTF-8 text (byte 0xe9 at offset 20); re-save it as UTF-8'}
    html = (out/'report.html').read_text()
    assert 'data:image/png;base64,' in html and '2024-03-02-latin1.md' in html
    assert (out/'final'/'config.json').is_file() and (out/'checkpoints'/'step_000012'/'trainer_state.json').is_file()

@pytest.mark.parametrize('make, expected', [
    (lambda p: p/'missing', 'folder does not exist'),
    (lambda p: (p/'empty').mkdir() or p/'empty', 'no posts found'),
])
def test_unusable_data_folder_is_one_line(tmp_path, tiny_model, make, expected):
    folder = make(tmp_path)
    r = stylefit('demo', '--data_dir', folder, '--base_model', tiny_model, '--out_dir', tmp_path/'run', *TINY)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f'stylefit: error: {folder}: {expected} (expected _posts/*.md)' if expected == 'no posts found' else f'stylefit: error: {folder}: {expected}']
    assert not (tmp_path/'run').exists()            # stopped before doing any work

def test_bad_settings_are_refused_before_any_work(tiny_blog, tiny_model, tmp_path):
    r = stylefit('demo', '--data_dir', tiny_blog, '--base_model', tiny_model, '--out_dir', tmp_path/'run', *TINY, '--learning_rate', 0)
    assert r.returncode == 2 and r.stderr.strip() == 'stylefit: error: learning_rate must be positive, got 0.0'
    r = stylefit('demo', '--data_dir', tiny_blog, '--base_model', tiny_model, '--out_dir', tmp_path/'run', *TINY, '--block_size', 4096)
    assert r.returncode == 2 and "larger than the model's context (256 tokens)" in r.stderr
    assert not (tmp_path/'run').exists()            # refused before the run folder was made

def test_missing_model_is_one_line(tiny_blog, tmp_path):
    r = stylefit('demo', '--data_dir', tiny_blog, '--base_model', tmp_path/'nope', '--out_dir', tmp_path/'run', *TINY)
    assert r.returncode == 2 and r.stderr.strip() == f'stylefit: error: {tmp_path/"nope"}: no such file or folder'
