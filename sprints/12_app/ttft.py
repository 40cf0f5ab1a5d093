"Time to the first streamed piece, in-process: bundled SmolLM2-135M on both sides of compare_stream, and one stream alone. Run: python sprints/12_app/ttft.py"
import time, os, sys
t = time.perf_counter()
from stylefit.app import compare_stream, loaded
from stylefit.sample import SampleConfig, stream_sample
print(f'import stylefit.app: {time.perf_counter() - t:.1f} s', flush=True)
t = time.perf_counter(); m = loaded('bundled'); print(f'load bundled: {time.perf_counter() - t:.1f} s', flush=True)
cfg = SampleConfig()            # the app's defaults: 80 new tokens, temperature 0.8, top-p 0.95, top-k 50, repetition penalty 1.1
prompt = 'Now then, shipmates,'
for rep in range(3):
    t0 = time.perf_counter(); first = None
    for piece in stream_sample(*m, prompt, cfg, 1337):
        if first is None: first = time.perf_counter() - t0
    alone = time.perf_counter() - t0
    t0 = time.perf_counter(); firsts = [None, None]; n = 0
    for a, b in compare_stream(m, m, prompt, cfg, 1337):
        firsts = [f if f is not None or not x else time.perf_counter() - t0 for f, x in zip(firsts, (a, b))]; n += 1
    pair = time.perf_counter() - t0
    print(f'round {rep}: alone first piece {first:.2f} s, all {alone:.2f} s | side by side first pieces {firsts[0]:.2f} s / {firsts[1]:.2f} s, both done {pair:.2f} s, {n} updates, same text: {a == b}', flush=True)
print(os.getloadavg())
