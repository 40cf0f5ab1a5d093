"`stylefit export` as a user runs it, and the export paths the notebook does not cover: untied heads, other architectures."
import json, os, re, subprocess, sys
import pytest, torch, gguf
from stylefit.export import ExportArgs, check_gguf, export, main_export, write_gguf, compare_logits, check_text, stop_tokens
from stylefit.lora import LoraSettings, apply_lora, save_lora
from stylefit.model import load_model
from stylefit.sample import load_for_sampling
from stylefit.test_utils import tiny_post

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

def stylefit(*args):
    return subprocess.run([sys.executable, '-c', 'import sys; from stylefit.cli import main; sys.exit(main())', *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=300)

@pytest.fixture(scope='module')
def lora_run(tmp_path_factory):
    "A finished LoRA run folder with only `adapter/` (merge_lora false), trained a few steps on a ChatML tiny model."
    root = tmp_path_factory.mktemp('export')
    from stylefit.test_utils import write_tiny_model
    base_dir = write_tiny_model(root/'tiny')
    model, tok = load_model(base_dir); tok.chat_template = CHATML; tok.save_pretrained(base_dir)
    peft_model = apply_lora(model, LoraSettings(use_lora=True, lora_r=4, lora_dropout=0.0))
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.tensor([tok(tiny_post(2) + tiny_post(3))['input_ids'][:96]])
    for _ in range(5): peft_model(input_ids=x, labels=x).loss.backward(); opt.step(); opt.zero_grad()
    run = root/'meg-run'
    save_lora(peft_model.eval(), tok, run, merge=False)
    (run/'config.json').write_text('{"train": {"max_steps": 5}}')
    return run

def test_cli_gguf_export_of_an_adapter_run(lora_run, tmp_path):
    out = tmp_path/'gguf'
    r = stylefit('export', lora_run, '--format', 'gguf', '--dtype', 'f32', '--out', out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'ollama create stylefit-meg-run -f {out/"Modelfile"}' in r.stdout and 'llama-cli -m' in r.stdout
    rep = json.loads((out/'export_report.json').read_text())
    assert rep['lora_merged'] and rep['merge_max_abs_logit_diff'] < 1e-4
    assert rep['check']['max_abs_logit_diff'] <= 1e-3 and rep['check']['tokenizer_ids_match'] and rep['check']['chat_template_kept']
    reader = gguf.GGUFReader(out/'stylefit-meg-run.gguf')
    assert reader.fields['tokenizer.chat_template'].contents() == CHATML
    tokens, types = reader.fields['tokenizer.ggml.tokens'].contents(), reader.fields['tokenizer.ggml.token_type'].contents()
    eog = [tokens[reader.fields[f'tokenizer.ggml.{k}_token_id'].contents()] for k in ('eos', 'eot')]
    stops = re.findall(r'^PARAMETER stop "(.*)"$', (out/'Modelfile').read_text(), re.M)
    assert stops == rep['stop_tokens'] == eog == ['<|endoftext|>', '<|im_end|>']       # the Modelfile stops where llama.cpp does
    assert all(types[tokens.index(s)] == gguf.TokenType.CONTROL for s in stops)

def test_hf_export_equals_base_plus_adapter(lora_run, tmp_path):
    assert main_export([str(lora_run), '--format', 'hf', '--dtype', 'f32', '--out', str(tmp_path/'hf')]) == 0
    exported, tok = load_model(tmp_path/'hf')
    peft_model, _ = load_for_sampling(lora_run, log=lambda m: None)                 # the PeftModel, adapter on its base
    ids = tok(check_text(tok))['input_ids']
    assert compare_logits(peft_model, exported, ids)['max_abs_logit_diff'] < 1e-4
    with peft_model.disable_adapter(): assert compare_logits(peft_model, exported, ids)['max_abs_logit_diff'] > 1e-2
    gen = json.loads((tmp_path/'hf'/'generation_config.json').read_text())
    assert gen['eos_token_id'] == tok.convert_tokens_to_ids(['<|endoftext|>', '<|im_end|>'])

def test_run_folder_without_final_or_adapter_is_one_line(tmp_path, capsys):
    run = tmp_path/'unfinished'; (run/'checkpoints').mkdir(parents=True)
    assert main_export([str(run), '--format', 'gguf', '--out', str(tmp_path/'out')]) == 2      # in-process: a subprocess costs ~20 s here
    assert capsys.readouterr().err.strip().splitlines() == [f'stylefit: error: {run}: run folder has no final model (final/) and no checkpoint: the run did not finish; train it again']
    assert not (tmp_path/'out').exists()

@pytest.mark.parametrize('args, message', [
    (['--format', 'onnx'], "unknown --format 'onnx': choose hf or gguf"),
    (['--format', 'hf', '--dtype', 'q8_0'], "--dtype 'q8_0' is not available for --format hf: choose f32, f16"),
    (['--dtype', 'q4_k'], "--dtype 'q4_k' is not available for --format gguf: choose f32, f16, q8_0"),
    (['--name', 'Meg Model'], "--name 'Meg Model': use lower-case letters"),
])
def test_bad_settings_are_one_line(lora_run, tmp_path, capsys, args, message):
    assert main_export([str(lora_run), '--out', str(tmp_path/'out'), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'stylefit: error: {message}'), err
    assert not (tmp_path/'out').exists()

def test_out_that_is_a_file_or_someone_elses_folder_is_refused(lora_run, tmp_path, capsys):
    (tmp_path/'f.gguf').write_text('x'); (tmp_path/'docs').mkdir(); (tmp_path/'docs'/'thesis.tex').write_text('mine')
    assert main_export([str(lora_run), '--out', str(tmp_path/'f.gguf')]) == 2
    assert capsys.readouterr().err.strip() == f'stylefit: error: {tmp_path/"f.gguf"}: is a file, not a folder: give --out a folder to write'
    assert main_export([str(lora_run), '--out', str(tmp_path/'docs')]) == 2
    assert 'holds no earlier export' in capsys.readouterr().err
    assert (tmp_path/'docs'/'thesis.tex').read_text() == 'mine'

def test_untied_head_is_written_as_output_weight(tiny_model, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    model, tok = load_model(tiny_model)
    torch.manual_seed(0)
    untied = LlamaForCausalLM(LlamaConfig(**{**model.config.to_dict(), 'tie_word_embeddings': False})).eval()
    assert not torch.equal(untied.lm_head.weight, untied.model.embed_tokens.weight)
    f = write_gguf(untied, tok, tmp_path/'u.gguf', 'f32')
    assert 'output.weight' in [t.name for t in gguf.GGUFReader(f).tensors]
    r = check_gguf(f, untied, tok)
    assert r['max_abs_logit_diff'] == 0 and r['tokenizer_ids_match']

def test_other_architectures_get_a_clear_gguf_error_but_export_to_hf(tiny_model, tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel
    _, tok = load_model(tiny_model)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    gpt2.save_pretrained(tmp_path/'gpt2'); tok.save_pretrained(tmp_path/'gpt2')
    assert main_export([str(tmp_path/'gpt2'), '--format', 'gguf', '--out', str(tmp_path/'g')]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "stylefit: error: GGUF export supports the llama architecture (SmolLM2, Llama, TinyLlama); this model is 'gpt2': use --format hf"
    assert not (tmp_path/'g').exists()
    rep = export(tmp_path/'gpt2', ExportArgs(format='hf', dtype='f16', out=str(tmp_path/'h')), log=lambda m: None)
    assert rep['check']['max_abs_logit_diff'] <= rep['check']['tolerance'] and 0 < rep['check']['rounding']['max_abs_logit_diff'] and rep['stop_tokens'] == ['<|endoftext|>']

def test_llama_cpp_reads_the_gguf_like_transformers(lora_run, tmp_path):
    "llama.cpp itself (llama-cpp-python: optional, not in the project's environment) reads the tokens, logits and stops we wrote."
    llama_cpp = pytest.importorskip('llama_cpp')
    import numpy as np
    from stylefit.export import logits_on
    rep = export(lora_run, ExportArgs(format='gguf', dtype='f32', out=str(tmp_path/'g')), log=lambda m: None)
    adapter_model, tok = load_for_sampling(lora_run, log=lambda m: None)
    llm = llama_cpp.Llama(model_path=str(tmp_path/'g'/'stylefit-meg-run.gguf'), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    text = check_text(tok); ids = tok(text)['input_ids']
    assert llm.tokenize(text.encode('utf-8'), add_bos=False, special=True) == ids                    # llama.cpp's tokenizer agrees
    llm.eval(ids)
    assert np.abs(np.array(llm.scores[:len(ids)]) - logits_on(adapter_model, ids).numpy()).max() < 1e-3  # f32 weights, f16 KV cache
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    assert {tok.convert_ids_to_tokens(i) for i in range(len(tok)) if llama_cpp.llama_vocab_is_eog(vocab, i)} == set(rep['stop_tokens'])   # it stops where Ollama is told to
    assert llm.metadata['tokenizer.chat_template'] == CHATML
