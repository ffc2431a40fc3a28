#!/usr/bin/python3
"""A small PyTorch DDP job for Berth's TrainingJob (gloo backend, CPU, synthetic data).

Fits a linear model to synthetic data. Works at any world size: Berth sets
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT for every worker. Rank 0
checkpoints to $BERTH_CHECKPOINT_DIR every few steps and when asked to stop
(SIGTERM: preemption or an elastic resize); a relaunched gang resumes from
the checkpoint at whatever world size it now has. At the end every rank writes
result-rank<R>.json (final loss, parameter checksum) to the checkpoint dir.

Knobs (environment): TOTAL_STEPS (default 60), STEP_SLEEP seconds per step
(default 0), FAIL_RANK/FAIL_AT_STEP/FAIL_TIMES: that rank kills itself with
SIGKILL at that step while BERTH_RESTARTS < FAIL_TIMES (for failure tests);
HOLD_FILE: after TOTAL_STEPS, keep going (slowly) until that file exists.
"""
import json
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

stop_requested = False


def on_term(signum, frame):
    global stop_requested
    stop_requested = True


def save(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def leave(code):
    """Wait for every rank, then exit without tearing the process group down.

    destroy_process_group() (and interpreter teardown with a live gloo group)
    can hang one rank after the others have gone (pytorch/pytorch#75097); once
    all ranks have passed the barrier nothing is left to synchronise, so exit
    directly.
    """
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main():
    signal.signal(signal.SIGTERM, on_term)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ckpt_dir = os.environ.get("BERTH_CHECKPOINT_DIR", ".")
    total = int(os.environ.get("TOTAL_STEPS", "60"))
    step_sleep = float(os.environ.get("STEP_SLEEP", "0"))
    fail_rank = int(os.environ.get("FAIL_RANK", "-1"))
    fail_step = int(os.environ.get("FAIL_AT_STEP", "3"))
    fail_times = int(os.environ.get("FAIL_TIMES", "1"))
    restarts = int(os.environ.get("BERTH_RESTARTS", "0"))
    hold = os.environ.get("HOLD_FILE", "")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)

    # Synthetic data: y = X w* + noise, the same on every rank; each rank
    # trains on its shard (rank::world) of every batch.
    gen = torch.Generator().manual_seed(1234)
    true_w = torch.randn(16, 1, generator=gen)
    x_all = torch.randn(4096, 16, generator=gen)
    y_all = x_all @ true_w + 0.01 * torch.randn(4096, 1, generator=gen)

    model = DDP(torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    ckpt = os.path.join(ckpt_dir, "ckpt.pt")
    step, history = 0, []
    if os.path.exists(ckpt):
        state = torch.load(ckpt)
        model.module.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, history = state["step"], state["history"]
        if rank == 0:
            print(f"resumed from step {step} at world size {world}", flush=True)
    elif rank == 0:
        print(f"starting at world size {world}", flush=True)

    def checkpoint():
        if rank == 0:
            save(ckpt, {"model": model.module.state_dict(), "opt": opt.state_dict(),
                        "step": step, "history": history})

    loss_fn = torch.nn.MSELoss()
    while True:
        held = hold and not os.path.exists(hold)
        flag = torch.tensor([1.0 if stop_requested else 0.0, 1.0 if held else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if step >= total and flag[1].item() == 0:
            break
        if flag[0].item() > 0:
            checkpoint()
            if rank == 0:
                print(f"stopping at step {step} (SIGTERM): checkpointed", flush=True)
            leave(0)
        if rank == fail_rank and step == fail_step and restarts < fail_times:
            print(f"rank {rank}: simulated crash at step {step}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if step >= total:  # held: wait for HOLD_FILE
            time.sleep(0.05)
            continue
        idx = torch.arange(step * 256, step * 256 + 256) % x_all.shape[0]
        idx = idx[rank::world]
        opt.zero_grad()
        loss = loss_fn(model(x_all[idx]), y_all[idx])
        loss.backward()
        opt.step()
        # The global loss this step (mean over ranks), for the history.
        lt = loss.detach().clone()
        dist.all_reduce(lt)
        history.append({"step": step, "loss": lt.item() / world, "world": world})
        step += 1
        if step % 5 == 0:
            checkpoint()
        if rank == 0 and step % 10 == 0:
            print(f"step {step} loss {history[-1]['loss']:.5f} world {world}", flush=True)
        if step_sleep > 0:
            time.sleep(step_sleep)
    checkpoint()
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    result = {"rank": rank, "world": world, "steps": step,
              "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"],
              "checksum": float(params.double().sum()), "params": params.tolist(),
              "worlds": sorted({h["world"] for h in history})}
    with open(os.path.join(ckpt_dir, f"result-rank{rank}.json"), "w") as f:
        json.dump(result, f)
    if rank == 0:
        print(f"done: loss {result['first_loss']:.5f} -> {result['final_loss']:.5f}", flush=True)
    leave(0)


if __name__ == "__main__":
    sys.exit(main())
