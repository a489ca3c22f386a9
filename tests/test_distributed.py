"""lorakit.launcher, lorakit.distributed and lorakit.sharding: two gloo ranks on the CPU, checked against hand counts."""
import multiprocessing
import os
import resource

import pytest
import torch

import lorakit
from lorakit import StackSpec, build_stack, launch, predict_buckets, trainable_bytes

SMALL = dict(d=64, n_layers=3, n_classes=2)


def hand_grad_bytes(model: torch.nn.Module) -> int:
    """The chapter's inline count: bytes of the parameters that require grad."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def test_trainable_bytes_is_the_hand_count():
    for spec in (StackSpec(**SMALL), StackSpec(**SMALL, r=4), StackSpec(**SMALL, r=4, train_head=True)):
        model = build_stack(spec)
        assert trainable_bytes(model) == hand_grad_bytes(model)
    d, L, r = SMALL["d"], SMALL["n_layers"], 4
    assert trainable_bytes(build_stack(StackSpec(**SMALL, r=r))) == 4 * L * r * (d + d)  # lora_param_count
    assert trainable_bytes(build_stack(StackSpec(**SMALL))) == 4 * (L * (d * d + d) + 2 * d + 2)


def test_predict_buckets_hand_cases():
    spec = StackSpec(d=1024, n_layers=2, r=64)  # 524,288 bytes per layer: 2 layers fill the 1 MiB first bucket
    assert predict_buckets(build_stack(spec)) == (1048576,)
    lora = build_stack(StackSpec(**SMALL, r=4))  # far below 1 MiB: one bucket
    assert predict_buckets(lora) == (trainable_bytes(lora),)


def test_ddp_all_reduces_4_bytes_per_trainable_parameter():
    runs = [(StackSpec(**SMALL), False), (StackSpec(**SMALL, r=4), False),
            (StackSpec(**SMALL, r=4, train_head=True), False), (StackSpec(**SMALL, r=4, used_layers=2), False)]
    ranks = launch(lorakit.ddp_comm_records, runs, 2, world_size=2, timeout_s=120)
    for records in ranks:
        full, lora, head, unused = records
        for c in (full, lora, head):
            assert not c.error
            assert c.bytes_per_step == (hand_grad_bytes(build_stack(c.spec)),) * 2
            assert c.steps[-1] == predict_buckets(build_stack(c.spec))
        assert "find_unused_parameters" in unused.error and unused.bytes_per_step == (0,)
    assert multiprocessing.active_children() == []


def test_failing_rank_raises_its_error():
    with pytest.raises(lorakit.RankError, match="rank 1 failed on purpose"):
        launch(lorakit.fail_on_rank, world_size=2, timeout_s=60)
    assert multiprocessing.active_children() == []


def abort_on_rank(rank: int, world_size: int) -> None:
    """Rank 1 dies as a C++ abort kills a process, with no Python traceback; rank 0 waits for it."""
    if rank == 1:
        print("rank 1 is about to abort")  # not flushed here: launch makes a rank's output line-buffered
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.abort()
    torch.distributed.barrier()


def test_a_rank_killed_by_a_signal_is_named_with_its_log():
    with pytest.raises(lorakit.RankError) as raised:
        launch(abort_on_rank, world_size=2, timeout_s=60)
    message = str(raised.value)
    assert message.startswith("rank 1 of 2 was killed by SIGABRT")  # not rank 0's broken barrier
    assert "rank 1 is about to abort" in message
    assert multiprocessing.active_children() == []


def test_fsdp2_halves_every_count_and_round_trips_the_adapter(tmp_path):
    specs = [StackSpec(**SMALL), StackSpec(**SMALL, r=4)]
    path = str(tmp_path / "adapter.pt")
    ranks = launch(lorakit.fsdp_lesson, specs, StackSpec(**SMALL, r=4), path, world_size=2, timeout_s=120)
    for spec, f0, f1 in zip(specs, ranks[0]["footprints"], ranks[1]["footprints"]):
        whole = lorakit.step_footprint(spec, sharded=False)
        model = build_stack(spec)
        assert whole.parameters == sum(p.numel() * 4 for p in model.parameters())
        assert whole.gradients == hand_grad_bytes(model) and whole.optimizer_state == 2 * whole.gradients
        assert f0 == f1 and f0.parameters * 2 == whole.parameters and f0.gradients * 2 == whole.gradients
        assert f0.optimizer_state * 2 == whole.optimizer_state
    trip = ranks[0]["roundtrip"]
    assert trip.equal_after_load and trip.differed_before_load and ranks[1]["roundtrip"] is None
    saved = torch.load(path)
    assert set(saved) == set(lorakit.adapter_names(build_stack(StackSpec(**SMALL, r=4))))
    d, L, r = SMALL["d"], SMALL["n_layers"], 4  # FSDP1, mixed units: a flat gradient as big as each layer unit
    for rank in ranks:
        assert "use_orig_params=False" in rank["fsdp1"].error_without_orig_params
        assert rank["fsdp1"].flat_grad_bytes == L * (d * d + d + r * 2 * d) * 4 // 2
