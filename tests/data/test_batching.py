import random

import pytest

from lightft.data.batching import PadCollator, bucket_length, eval_batches, train_batches


def lengths(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.randint(5, 300) for _ in range(n)]


@pytest.mark.parametrize("group", [False, True])
def test_train_batches_cover_every_row_once_and_are_deterministic(group):
    ls = lengths()
    plan = train_batches(ls, 16, seed=1, epoch=0, group=group)
    assert sorted(i for b in plan for i in b) == list(range(len(ls)))
    assert max(len(b) for b in plan) == 16
    assert plan == train_batches(ls, 16, seed=1, epoch=0, group=group)
    assert plan != train_batches(ls, 16, seed=1, epoch=1, group=group)


def test_default_batches_are_random_rows_not_length_sorted():
    ls = lengths()
    plan = train_batches(ls, 16, seed=1, epoch=0)
    # random rows: a batch's lengths spread over most of the range (grouped batches span a few tokens)
    spreads = [max(ls[i] for i in b) - min(ls[i] for i in b) for b in plan if len(b) == 16]
    assert sum(spreads) / len(spreads) > 150


def test_length_grouping_cuts_padding():
    ls = lengths()
    grouped = train_batches(ls, 16, seed=1, epoch=0, group=True)
    rng = random.Random(0)
    order = list(range(len(ls)))
    rng.shuffle(order)
    naive = [order[i:i + 16] for i in range(0, len(order), 16)]

    def padded(batches):
        return sum(max(ls[i] for i in b) * len(b) for b in batches)

    assert padded(grouped) < 0.8 * padded(naive)


def test_token_budget_bounds_padded_tokens():
    ls = lengths()
    plan = train_batches(ls, 16, seed=1, epoch=0, max_tokens=2048)
    assert sorted(i for b in plan for i in b) == list(range(len(ls)))
    assert all(max(ls[i] for i in b) * len(b) <= 2048 for b in plan)
    assert max(len(b) for b in plan) > 16  # short rows get bigger batches


def test_eval_batches_are_length_sorted():
    ls = lengths(100)
    flat = [i for b in eval_batches(ls, 10) for i in b]
    assert [ls[i] for i in flat] == sorted(ls, reverse=True)


def test_collator_pads_to_multiple_of_8():
    batch = PadCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "index": 0, "label": 1},
                                          {"input_ids": [5], "index": 1, "label": 0}])
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum().item() == 4
    assert batch["labels"].tolist() == [1, 0]


def test_bucket_lengths_are_few_and_pad_at_most_a_quarter():
    assert [bucket_length(n) for n in (1, 16, 17, 21, 33, 64, 65, 200, 257, 512)] == [
        16, 16, 20, 24, 40, 64, 80, 224, 320, 512]
    sizes = {bucket_length(n) for n in range(1, 513)}
    assert len(sizes) == 21  # one shape per length would be 512
    assert all(n <= bucket_length(n) <= max(16, 1.25 * n) for n in range(1, 5000))
    assert bucket_length(290, cap=300) == 300 and bucket_length(250, cap=256) == 256
    assert bucket_length(301, cap=300) == 320  # a cap below the length does not truncate
    assert [bucket_length(n, per_doubling=8) for n in (17, 19, 129, 8193, 9000)] == [18, 20, 144, 9216, 9216]
    assert all(n <= bucket_length(n, per_doubling=8) <= max(16, 1.125 * n) for n in range(1, 20000))


def test_bucketed_collator_pads_to_bucket_sizes_capped_at_max_length():
    items = [{"input_ids": [1] * n, "index": i} for i, n in enumerate((3, 33))]
    assert PadCollator(0, bucket=True)(items)["input_ids"].shape == (2, 40)
    assert PadCollator(0, bucket=True, cap=36)(items)["input_ids"].shape == (2, 36)
    batch = PadCollator(0, bucket=True)(items)
    assert batch["attention_mask"].sum(1).tolist() == [3, 33]


def test_token_budget_holds_for_the_padded_batches_the_model_sees():
    import random

    from lightft.data.batching import BatchPlan

    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(500)]
    for collate in (PadCollator(0), PadCollator(0, bucket=True, cap=64)):
        plan = BatchPlan(lengths, 16, seed=1, max_tokens=128, width=collate.width)
        for batch in plan.batches:
            padded = collate([{"input_ids": [1] * lengths[i], "index": i} for i in batch])["input_ids"]
            assert padded.numel() <= 128 or len(batch) == 1, (len(batch), padded.shape)
        # the raw length alone (no width) lets rounding push batches over: 9-token rows x 14 = 126, padded 16 x 14
    unrounded = eval_batches([9] * 14, 16, max_tokens=128)
    assert len(unrounded) == 1 and PadCollator(0).width(9) * 14 > 128
    assert [len(b) for b in eval_batches([9] * 14, 16, max_tokens=128, width=PadCollator(0).width)] == [8, 6]


def test_loss_denominators_give_every_row_the_same_weight():
    from lightft.data.batching import BatchPlan

    rows = BatchPlan([5] * 20, 8, seed=0)
    assert rows.loss_denominators(1) == [8.0, 8.0, 4.0]  # each update: the mean over its rows
    assert rows.loss_denominators(2) == [16.0, 4.0]  # the short last window is not divided by 2 again
    budget = BatchPlan([4] * 30 + [40] * 6, 16, seed=0, max_tokens=80)
    sizes = [len(b) for b in budget.batches]
    assert len(set(sizes)) > 1  # batches of 20 short rows and of 2 long ones
    assert budget.loss_denominators(1) == [sum(sizes) / len(sizes)] * len(sizes)
    assert budget.updates(3, 2) == sum(-(-len(budget.plan(e)) // 2) for e in range(3))


@pytest.mark.parametrize("max_tokens", [None, 80])
def test_a_plan_shared_by_processes_deals_every_batch_out_once_padded_to_a_multiple(max_tokens):
    """Under accelerate launch: the processes' batches together are the one-process plan (its first batches repeated
    to fill the last round), each process has as many, and a window's denominator is its rows over every process
    divided by the process count (the mean of the processes' gradients is then the mean over the window's rows)."""
    from lightft.data.batching import BatchPlan

    lengths = [4] * 30 + [40] * 7
    one = BatchPlan(lengths, 6, seed=3, max_tokens=max_tokens)
    shards = [BatchPlan(lengths, 6, seed=3, max_tokens=max_tokens, processes=3, rank=r) for r in range(3)]
    for epoch in (0, 1):
        one.set_epoch(epoch)
        for s in shards:
            s.set_epoch(epoch)
        base = one.batches
        padded = base + base[: (-len(base)) % 3]
        assert len({len(s.batches) for s in shards}) == 1
        dealt = [shards[i % 3].batches[i // 3] for i in range(len(padded))]
        assert dealt == padded  # update k of each process: global batches 3k, 3k+1, 3k+2
        assert list(shards[1]) == shards[1].batches
        for ga in (1, 2):
            got = shards[0].loss_denominators(ga)
            assert got == shards[2].loss_denominators(ga) and len(got) == -(-len(shards[0].batches) // ga)
            sizes = [len(b) for b in padded]
            windows = [sum(sizes[i : i + 3 * ga]) / 3 for i in range(0, len(sizes), 3 * ga)]
            assert got == (windows if max_tokens is None else [sum(windows) / len(windows)] * len(windows))
            assert shards[0].updates(2, ga) == sum(-(-len(BatchPlan(lengths, 6, seed=3, max_tokens=max_tokens,
                                                                      processes=3, rank=0).plan(e)) // (3 * ga))
                                                   for e in range(2))
    single = BatchPlan(lengths, 6, seed=3, max_tokens=max_tokens)
    assert single.loss_denominators(2) == BatchPlan(lengths, 6, seed=3, max_tokens=max_tokens,
                                                     processes=1).loss_denominators(2)
