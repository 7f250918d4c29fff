"Run a function on N gloo ranks (processes) of one machine, as the DDP tests need."
import faulthandler, gc, os, socket, sys

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _rank(rank, world, port, body, args):
    faulthandler.enable(all_threads=True)                  # a native crash prints every thread's Python stack
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        body(rank, world, *args)
        gc.collect()                                       # DDP wrappers and their hooks go before the group does
        dist.barrier()                                     # no rank leaves while its peer still talks to it
    finally:
        dist.destroy_process_group()
    # leave without interpreter teardown: under CPU contention, gloo's threads at exit have aborted a rank
    # ("terminate called without an active exception") after its work was done
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)


def run_gloo(body, world: int, *args):
    "`body(rank, world, *args)` on `world` gloo ranks; raises if any rank fails."
    mp.spawn(_rank, args=(world, free_port(), body, args), nprocs=world, join=True)
