"Train the tiny model on the tiny blog; used by the tests as a separate process (kill, resume, 2 processes)."
import json, sys, time
from pathlib import Path
model_dir, blog, out, max_steps, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
slow_save_at = int(sys.argv[6]) if len(sys.argv) > 6 else 0
from stylefit.model import load_model
from stylefit.sources import read_jekyll
from stylefit.pack import pack_blocks, tokenize_documents
from stylefit.train import TrainConfig, train
if slow_save_at:   # make the save at that step hang half-way, so the test can SIGKILL it there
    import accelerate
    orig = accelerate.Accelerator.save_state
    def slow(self, d, *a, **k):
        r = orig(self, d, *a, **k)
        if f'step_{slow_save_at:06d}' in d: print('SAVING', flush=True); time.sleep(60)
        return r
    accelerate.Accelerator.save_state = slow
model, tok = load_model(model_dir)
docs = read_jekyll(blog)[0]
tr = pack_blocks(tokenize_documents(docs[:20], tok), 32); va = pack_blocks(tokenize_documents(docs[20:], tok), 32, drop_last=False)
cfg = TrainConfig(out_dir=out, block_size=32, batch_size=batch_size, max_steps=max_steps, learning_rate=3e-3, warmup_steps=0, eval_interval=5)
train(model, tr, va, cfg, resume=True, log=lambda s: print(s, flush=True))
