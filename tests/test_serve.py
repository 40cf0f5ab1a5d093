"`stylefit serve` as its users see it: the real server in a subprocess, driven by the official `openai` client."
import json, os, re, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import httpx, openai, pytest
from openai import OpenAI
from stylefit.prepare import SYNTHETIC_SYSTEM, SyntheticConfig, chat_completion, generate_synthetic
from stylefit.sample import SampleConfig, cut_at_stop, load_for_sampling, sample_texts
from stylefit.serve import PLAIN_CHAT, bind_socket, complete, render_chat
from stylefit.sources import Document

CLI = 'import sys; from stylefit.cli import main; sys.exit(main())'
KEY = 'sk-stylefit-test'
MAX = 8                                   # the server's default max_tokens (--max_new_tokens)
PROMPT = 'Now then, shipmates,'
CFG = SampleConfig(max_new_tokens=MAX)    # what the server samples with, unless a request says otherwise

class Server:
    "`stylefit serve ...` in a subprocess; its output is collected as it comes."
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, '-c', CLI, 'serve', *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
        self.lines, self.url = [], None
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
    def output(self) -> str: return ''.join(self.lines)
    def wait_ready(self, timeout=120):
        "Wait for the printed URL and a healthy /health; the start-up seconds."
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None: raise AssertionError(f'server exited {self.proc.returncode}:\n{self.output()}')
            if m := re.search(r' on (http://\S+)/v1 ', self.output()):
                try:
                    if httpx.get(m.group(1) + '/health', timeout=2).status_code == 200: self.url = m.group(1); return time.time() - t0
                except httpx.HTTPError: pass
            time.sleep(0.2)
        raise AssertionError(f'server not ready after {timeout} s:\n{self.output()}')
    def stop(self):
        self.proc.terminate()
        try: self.proc.wait(20)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()

@pytest.fixture(scope='module')
def server(tiny_model):
    s = Server(tiny_model, '--port', 0, '--api-key', KEY, '--max_new_tokens', MAX)
    s.startup_s = s.wait_ready()
    yield s
    s.stop()

@pytest.fixture(scope='module')
def client(server): return OpenAI(base_url=server.url + '/v1', api_key=KEY, max_retries=0, timeout=120)

@pytest.fixture(scope='module')
def local(tiny_model): return load_for_sampling(tiny_model)     # the same model in this process: what the answers must be

def test_start_prints_the_url_and_lines_that_work(server):
    out = server.output()
    assert f'stylefit serve: tiny (' in out and "curl http://127.0.0.1:" in out and 'Authorization: Bearer $STYLEFIT_API_KEY' in out
    assert "from openai import OpenAI" in out and server.url.startswith('http://127.0.0.1:')    # bound to localhost only

def test_models_lists_the_one_model(client):
    models = client.models.list().data
    assert [m.id for m in models] == ['tiny']
    assert models[0].model_extra['context_length'] == 256 and models[0].model_extra['chat_format'] == PLAIN_CHAT
    assert client.models.retrieve('tiny').id == 'tiny'
    with pytest.raises(openai.NotFoundError): client.models.retrieve('gpt-4')

def test_completion_is_sample_texts_for_its_seed(client, local):
    model, tok = local
    r = client.completions.create(model='tiny', prompt=PROMPT, seed=11)
    assert r.choices[0].text == sample_texts(model, tok, [PROMPT], [11], CFG)[0]
    assert (r.choices[0].finish_reason, r.usage.completion_tokens, r.usage.prompt_tokens) == ('length', MAX, len(tok(PROMPT)['input_ids']))
    full = r.choices[0].text
    s = client.completions.create(model='tiny', prompt=PROMPT, seed=11, stop=[full[3]])        # a stop sequence that appears
    assert (s.choices[0].text, s.choices[0].finish_reason) == (cut_at_stop(full, [full[3]]), 'stop')

def test_an_answer_that_ends_with_eos_is_stop(client, local):
    model, tok = local          # seed 1 writes EOS as its 66th token (found by sampling seeds 0-9 with this tiny model)
    text, finish, n = complete(model, tok, PROMPT, SampleConfig(max_new_tokens=100), 1)
    r = client.completions.create(model='tiny', prompt=PROMPT, seed=1, max_tokens=100)
    assert (r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens) == (text, finish, n) == (text, 'stop', 66)
    # EOS as the very last allowed token is still a stop, streamed or not
    whole = client.completions.create(model='tiny', prompt=PROMPT, seed=1, max_tokens=66)
    chunks = list(client.completions.create(model='tiny', prompt=PROMPT, seed=1, max_tokens=66, stream=True, stream_options={'include_usage': True}))
    assert whole.choices[0].finish_reason == [c.choices[0].finish_reason for c in chunks if c.choices][-1] == 'stop'
    assert whole.usage.completion_tokens == chunks[-1].usage.completion_tokens == 66

def test_chat_answer_continues_the_plain_chat_prompt(client, local):
    model, tok = local
    msgs = [{'role': 'system', 'content': 'You are Meg.'}, {'role': 'user', 'content': PROMPT}]
    r = client.chat.completions.create(model='tiny', messages=msgs, seed=5)
    prompt = render_chat(tok, msgs)
    assert prompt == f'system: You are Meg.\nuser: {PROMPT}\nassistant: '
    assert r.choices[0].message.role == 'assistant'
    assert r.choices[0].message.content == sample_texts(model, tok, [prompt], [5], SampleConfig(max_new_tokens=MAX, stop_sequences=['\nuser:']))[0]

@pytest.mark.parametrize('chat', [False, True])
def test_stream_pieces_join_to_the_same_answer(client, chat):
    args = dict(model='tiny', seed=8, max_tokens=12)          # seed 8: text with spaces, so it streams in several pieces
    create = (lambda **kw: client.chat.completions.create(messages=[{'role': 'user', 'content': PROMPT}], **args, **kw)) if chat else \
             (lambda **kw: client.completions.create(prompt=PROMPT, **args, **kw))
    whole = create()
    chunks = list(create(stream=True, stream_options={'include_usage': True}))
    pieces = [(c.choices[0].delta.content or '') if chat else c.choices[0].text for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 1                                   # it came in pieces
    text = whole.choices[0].message.content if chat else whole.choices[0].text
    assert ''.join(pieces) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason == 'length'
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 12
    if chat: assert chunks[0].choices[0].delta.role == 'assistant'

def test_a_key_is_required(server):
    for key in ('wrong', ''):
        bad = OpenAI(base_url=server.url + '/v1', api_key=key or 'x', max_retries=0, default_headers={} if key else {'Authorization': ''})
        with pytest.raises(openai.AuthenticationError): bad.models.list()
        with pytest.raises(openai.AuthenticationError): bad.completions.create(model='tiny', prompt=PROMPT)
    r = httpx.post(server.url + '/v1/chat/completions', content=b'not even JSON')         # refused before the body is read
    assert r.status_code == 401 and r.json()['error']['code'] == 'invalid_api_key' and 'Authorization: Bearer' in r.json()['error']['message']
    assert httpx.get(server.url + '/health').json()['status'] == 'ok'                    # health needs no key

@pytest.mark.parametrize('kwargs, param, words', [
    (dict(extra_body={'logit_bias_typo': 1}), 'logit_bias_typo', "unknown field 'logit_bias_typo'"),
    (dict(max_tokens=10_000), 'max_tokens', "more than the model's context of 256 tokens"),
    (dict(n=2), 'n', 'n must be 1'),
    (dict(temperature=5), 'temperature', 'less than or equal to 2'),
    (dict(presence_penalty=1), 'presence_penalty', 'presence_penalty is not supported'),
])
def test_bad_input_is_400_with_a_message(client, kwargs, param, words):
    with pytest.raises(openai.BadRequestError) as e: client.completions.create(model='tiny', prompt=PROMPT, **kwargs)
    err = e.value.body
    assert e.value.status_code == 400 and err['param'] == param and words in err['message'], err

def test_bad_json_and_empty_messages_are_400(server, client):
    r = httpx.post(server.url + '/v1/chat/completions', content=b'{"model": "tiny", "messages": [', headers={'Authorization': f'Bearer {KEY}', 'Content-Type': 'application/json'})
    assert r.status_code == 400 and r.json()['error']['message'].startswith('the request body is not valid JSON')
    with pytest.raises(openai.BadRequestError) as e: client.chat.completions.create(model='tiny', messages=[])
    assert e.value.body['param'] == 'messages'

def test_16_concurrent_requests_are_all_answered(server, client, local):
    model, tok = local
    seeds = list(range(100, 116))
    t0 = time.time()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda s: client.completions.create(model='tiny', prompt=PROMPT, seed=s).choices[0].text, seeds))
    wall = time.time() - t0
    assert answers == sample_texts(model, tok, [PROMPT] * 16, seeds, SampleConfig(max_new_tokens=MAX, sample_batch_size=16))
    print(f'\n16 concurrent completions of {MAX} tokens: {wall:.2f} s wall, {16 * MAX / wall:.1f} tok/s; server start {server.startup_s:.1f} s')
    assert httpx.get(server.url + '/health').json() | {'status': 'ok'} == {'status': 'ok', 'model': 'tiny', 'busy': False, 'waiting': 0}

def test_hanging_up_mid_stream_frees_the_model(server, client):
    body = {'model': 'tiny', 'prompt': PROMPT + ' ', 'max_tokens': 200, 'temperature': 0, 'stream': True}   # greedy: 200 spaces, one piece each
    with httpx.stream('POST', server.url + '/v1/completions', json=body, headers={'Authorization': f'Bearer {KEY}'}, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith('data: ') and json.loads(line[6:])['choices'][0]['text']: break   # the first piece of text, then hang up
    t0 = time.time()
    after = client.completions.create(model='tiny', prompt=PROMPT, seed=3)                        # the next request is answered
    assert after.choices[0].finish_reason == 'length' and time.time() - t0 < 30
    for _ in range(50):                                                                          # the log line may trail the answer by a moment
        if m := re.search(r'client went away; stream stopped after (\d+) of 200 tokens', server.output()): break
        time.sleep(0.1)
    assert m and int(m.group(1)) < 200, server.output()[-2000:]
    assert httpx.get(server.url + '/health').json()['busy'] is False

def test_synthetic_generator_works_against_the_server(server, local):
    model, tok = local
    cfg = SyntheticConfig(synthetic_n=2, synthetic_base_url=server.url + '/v1', synthetic_api_key=KEY, synthetic_examples=1,
                          synthetic_max_tokens=6, synthetic_temperature=0)
    msgs = [{'role': 'system', 'content': SYNTHETIC_SYSTEM}, {'role': 'user', 'content': 'Write one new post in the same style.'}]
    expected = complete(model, tok, render_chat(tok, msgs), SampleConfig(max_new_tokens=6, temperature=0, stop_sequences=['\nuser:']), 0)
    assert chat_completion(msgs, cfg) == expected[:2] and expected[1] == 'length'       # greedy: the seed does not matter
    docs = [Document('Now then, shipmates, the oven is proper today. Fair winds and warm crusts, Meg.', f'p{i}.md') for i in range(3)]
    made, dropped = generate_synthetic(docs, cfg)
    assert made == [] and [d.reason for d in dropped] == ['truncated (generation stopped at synthetic_max_tokens=6)'] * 2
    wrong = SyntheticConfig(synthetic_n=1, synthetic_base_url=server.url + '/v1', synthetic_api_key='nope')
    with pytest.raises(Exception, match='HTTP 401'): chat_completion(msgs, wrong)

def test_bad_command_lines_are_one_error_line(tmp_path, tiny_model, capsys):
    from stylefit.cli import main              # in this process: the same entry point, without another torch import
    assert main(['serve', str(tmp_path/'nope'), '--port', '0']) == 2
    assert capsys.readouterr().err.strip() == f'stylefit: error: {tmp_path/"nope"}: no such file or folder'
    with bind_socket('127.0.0.1', 0) as taken:
        port = taken.getsockname()[1]
        assert main(['serve', str(tiny_model), '--port', str(port)]) == 2
    assert capsys.readouterr().err.strip() == (f'stylefit: error: cannot listen on 127.0.0.1:{port} (Address already in use): '
                                               'another program is listening there; pick another --port')
