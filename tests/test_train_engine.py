"The training engine as separate processes: SIGKILL during a save, two processes (torchrun and accelerate launch), resume, EOS, the train command."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from stylefit.model import load_model
from stylefit.pack import pack_blocks, tokenize_documents
from stylefit.sources import Document
from stylefit.train import TrainConfig, latest_checkpoint, train

SCRIPT = Path(__file__).parent/'train_script.py'
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}

def losses(run): return [json.loads(l)['train_loss'] for l in (Path(run)/'metrics.jsonl').read_text().splitlines()]

def run_script(*args, launcher=(sys.executable,)):
    r = subprocess.run([*launcher, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r

def test_sigkill_during_a_save_loses_nothing(tiny_model, tiny_blog, tmp_path):
    run_script(tiny_model, tiny_blog, tmp_path/'straight', 15, 4)
    p = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, (tiny_model, tiny_blog, tmp_path/'killed', 15, 4, 10))], stdout=subprocess.PIPE, text=True, env=ENV)
    for line in p.stdout:                        # wait until the step-10 save is half done
        if line.startswith('SAVING'): break
    p.send_signal(signal.SIGKILL); p.wait()
    ck = tmp_path/'killed'/'checkpoints'
    assert latest_checkpoint(tmp_path/'killed').name == 'step_000005'       # the half-written one does not count
    assert (ck/'.step_000010.tmp').exists() and not (ck/'step_000010').exists()
    run_script(tiny_model, tiny_blog, tmp_path/'killed', 15, 4)              # resume
    assert losses(tmp_path/'killed') == pytest.approx(losses(tmp_path/'straight'), abs=1e-4)
    assert not (ck/'.step_000010.tmp').exists()

def test_two_processes_match_one_with_the_same_global_batch(tiny_model, tiny_blog, tmp_path):
    run_script(tiny_model, tiny_blog, tmp_path/'one', 10, 4)
    for name, launcher in (('torchrun', ('torchrun', '--nproc_per_node', '2', '--master_port', '29533')),          # DDP over gloo on CPU
                           ('accelerate', ('accelerate', 'launch', '--multi_gpu', '--num_processes', '2', '--main_process_port', '29535'))):
        r = run_script(tiny_model, tiny_blog, tmp_path/name, 10, 4, launcher=launcher)
        assert '2 process(es)' in r.stdout, name
        assert losses(tmp_path/name) == pytest.approx(losses(tmp_path/'one'), abs=1e-3), name
        assert {p.name for p in (tmp_path/name/'checkpoints'/'step_000010').iterdir()} >= {'random_states_0.pkl', 'random_states_1.pkl'}

def test_eos_is_learned_on_short_documents(tiny_model, tmp_path):
    model, tok = load_model(tiny_model)
    docs = [Document(f'Fair winds, shipmates {i % 3}.', f'{i}.md') for i in range(60)]
    blocks = pack_blocks(tokenize_documents(docs, tok), 32)
    train(model, blocks, blocks[:2], TrainConfig(out_dir=str(tmp_path/'run'), block_size=32, max_steps=60, learning_rate=1e-2, warmup_steps=2, eval_interval=60), log=lambda s: None)
    x = tok('Fair winds,', return_tensors='pt', add_special_tokens=False).input_ids
    out = model.generate(x, max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id)[0, x.shape[1]:].tolist()
    assert tok.eos_token_id in out and out.index(tok.eos_token_id) <= 6, tok.decode(out)   # it stops by itself

def test_train_command_with_lora_and_resume(tiny_model, tiny_blog, tmp_path):
    cmd = [sys.executable, '-c', 'import sys; from stylefit.cli import main; sys.exit(main())', 'train', '--data', str(tiny_blog), '--base', str(tiny_model),
           '--out', str(tmp_path/'run'), '--lora', '--lora_r', '4', '--block_size', '32', '--max_steps', '10', '--learning_rate', '1e-2',
           '--eval_interval', '5', '--max_new_tokens', '6', '--n_prompts', '1']
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/'run'/'results.json').read_text())
    assert res['mode'] == 'LoRA r=4' and res['ppl_after'] < res['ppl_before']
    assert (tmp_path/'run'/'adapter'/'adapter_config.json').is_file() and (tmp_path/'run'/'final'/'config.json').is_file()
    again = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)       # same folder, no --resume
    assert again.returncode == 2 and 'already holds a run' in again.stderr and len(again.stderr.strip().splitlines()) == 1
    changed = subprocess.run(cmd[:-14] + ['--lora_r', '8', '--block_size', '32', '--max_steps', '15', '--resume', 'true'], capture_output=True, text=True, env=ENV, timeout=300)
    assert changed.returncode == 2 and 'cannot resume with different lora_r' in changed.stderr
    more = subprocess.run(cmd[:-12] + ['--block_size', '32', '--max_steps', '15', '--learning_rate', '1e-2', '--eval_interval', '5',
                                       '--max_new_tokens', '6', '--n_prompts', '1', '--resume', 'true'], capture_output=True, text=True, env=ENV, timeout=300)
    assert more.returncode == 0, more.stderr[-2000:]
    assert 'resuming from' in more.stdout and len(losses(tmp_path/'run')) == 15

def test_train_command_under_torchrun(tiny_model, tiny_blog, tmp_path):
    import shutil
    r = subprocess.run(['torchrun', '--nproc_per_node', '2', '--master_port', '29547', shutil.which('stylefit'), 'train', '--data', str(tiny_blog),
                        '--base', str(tiny_model), '--out', str(tmp_path/'run'), '--block_size', '32', '--max_steps', '4', '--eval_interval', '2',
                        '--max_new_tokens', '4', '--n_prompts', '1'], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/'run'/'results.json').read_text())
    assert res['num_processes'] == 2 and res['ppl_after'] < res['ppl_before']
    assert r.stdout.count('base model: held-out perplexity') == 1          # one rank measures and reports
