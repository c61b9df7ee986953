import json
from collections import Counter

import pytest

from lightft.data.prepare import prepare_splits, stratified_split
from lightft.errors import LightftError, LightftWarning
from tests.conftest import synthetic_rows, write_jsonl


def test_validation_is_carved_from_train_stratified_and_seeded(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(200, seed=0))
    write_jsonl(tmp_path / "test.jsonl", synthetic_rows(30, seed=1))
    a = prepare_splits(str(tmp_path), validation_fraction=0.2, seed=3)
    b = prepare_splits(str(tmp_path), validation_fraction=0.2, seed=3)
    assert a.sizes() == {"train": 160, "validation": 40, "test": 30}
    assert Counter(a.validation.labels) == {0: 20, 1: 20}
    assert a.validation.texts == b.validation.texts
    assert not set(a.validation.texts) & set(a.test.texts) - set(a.train.texts)
    assert a.labels.names == ("neg", "pos")


def test_limits_take_seeded_random_subsets(tmp_path):
    rows = sorted(synthetic_rows(300, seed=0), key=lambda r: r["label"])  # sorted by label, like IMDB
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:100] + rows[-100:])
    s = prepare_splits(str(tmp_path), limit_train=50, limit_eval=20, seed=1)
    assert s.sizes() == {"train": 50, "validation": 20, "test": 20}
    assert len(set(s.train.labels)) == 2 and len(set(s.test.labels)) == 2
    assert prepare_splits(str(tmp_path), limit_train=50, seed=1).train.texts == s.train.texts
    assert prepare_splits(str(tmp_path), limit_train=50, seed=2).train.texts != s.train.texts


def test_a_class_the_training_subset_lost_is_noted_and_weighs_nothing(tmp_path):
    from lightft.data.labels import balanced_weights

    rows = synthetic_rows(200, seed=0, classes=("neg", "pos")) + synthetic_rows(2, seed=1, classes=("meh",))
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", synthetic_rows(30, seed=2, classes=("neg", "pos", "meh")))
    s = prepare_splits(str(tmp_path), limit_train=20, seed=1)
    assert s.labels.names == ("meh", "neg", "pos") and 0 not in s.train.labels
    assert "'meh' has no training rows in the --limit-train 20 subset: the model cannot learn it; raise " \
           "--limit-train or add rows" in s.notes
    weights = balanced_weights(s.train.labels, 3)  # over the classes present: the rows still average 1
    assert weights[0] == 0 and sum(weights[y] for y in s.train.labels) == pytest.approx(len(s.train))
    assert not any("no training rows" in n for n in prepare_splits(str(tmp_path), seed=1).notes)


def test_integer_labels_keep_their_ids_and_csv_digits_become_ints(tmp_path):
    # "1.0": pandas writes a label column with gaps as floats; it is the class 1, not a class of its own
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"t{i},{i % 3}{'.0' * (i % 2)}\n" for i in range(30)))
    s = prepare_splits(str(tmp_path / "train.csv"))
    assert s.labels.names == (0, 1, 2)
    assert any("single file" in n for n in s.notes)


def test_columns_are_detected_or_named(tmp_path):
    rows = [{"review": r["text"], "sentiment": r["label"]} for r in synthetic_rows(40, 0)]
    write_jsonl(tmp_path / "a" / "train.jsonl", rows)
    s = prepare_splits(str(tmp_path / "a"))  # unambiguous: detected
    assert (s.text_column, s.label_column) == ("review", "sentiment")
    write_jsonl(tmp_path / "b" / "train.jsonl", [{**r, "source": "web"} for r in rows])
    with pytest.raises(LightftError, match=r"cannot tell which column holds the label; the columns are: review, "
                                           r"sentiment, source; pass --label-column NAME"):
        prepare_splits(str(tmp_path / "b"))
    assert prepare_splits(str(tmp_path / "b"), label_column="sentiment").label_column == "sentiment"


def test_texts_without_labels_are_pointed_to_predict(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"text {i}"} for i in range(20)])
    with pytest.raises(LightftError, match=r"^the data has no label column \(its only column is 'text'\); training and "
                                           r"evaluation need a label for every row: add a label column, or predict "
                                           r"unlabelled texts with `lightft predict RUN --file FILE`$"):
        prepare_splits(str(tmp_path))


def test_the_text_column_is_the_column_of_words_that_is_not_a_label(tmp_path):
    (tmp_path / "a.csv").write_text("body,label\n" + "".join(f"words number {i},{i % 2}\n" for i in range(30)))
    write_jsonl(tmp_path / "b.jsonl", [{"id": str(i), "body": f"words {i}", "label": ["neg", "pos"][i % 2]}
                                        for i in range(30)])
    assert prepare_splits(str(tmp_path / "a.csv")).text_column == "body"  # csv: '0'/'1' are numbers, not words
    splits = prepare_splits(str(tmp_path / "b.jsonl"))  # 'label' by name, ids are numbers
    assert (splits.text_column, splits.label_column) == ("body", "label")


def test_wrong_column_lists_the_columns(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(20, 0))
    with pytest.raises(LightftError, match=r"text column 'body' \(--text-column\) not found; the columns are: text, label"):
        prepare_splits(str(tmp_path), text_column="body")


def test_empty_text_is_rejected_with_its_row(tmp_path):
    rows = synthetic_rows(20, 0)
    rows[4]["text"] = "   "
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(LightftError, match=r"train row 5 has an empty text in column 'text'"):
        prepare_splits(str(tmp_path))


def test_eval_label_unseen_in_train(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(20, 0))
    write_jsonl(tmp_path / "test.jsonl", synthetic_rows(6, 1) + [{"text": "so so", "label": "meh"}])
    with pytest.raises(LightftError, match=r"label\(s\) 'meh' appear in the test split \(1 row\) but never in train"):
        prepare_splits(str(tmp_path))


def test_single_class_training_set(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [r for r in synthetic_rows(20, 0) if r["label"] == "pos"])
    with pytest.raises(LightftError, match=r"single class \('pos' in column 'label'\); classification needs at least 2"):
        prepare_splits(str(tmp_path))


def test_stratified_split_keeps_class_shares():
    labels = [0] * 90 + [1] * 10
    kept, carved = stratified_split(labels, 0.1, seed=0)
    assert sorted(kept + carved) == list(range(100))
    assert Counter(labels[i] for i in carved) == {0: 9, 1: 1}


@pytest.mark.parametrize("labels, expected", [
    ([1, 1.0, 0, 0.0], [1, 1, 0, 0]),
    (["negative", "negative ", "pos", "pos"], ["negative", "negative", "pos", "pos"]),
])
def test_labels_that_mean_the_same_class_are_one_class(tmp_path, labels, expected):
    rows = [{"text": f"text {i}", "label": v} for i, v in enumerate(labels * 5)]
    splits = prepare_splits(str(write_jsonl(tmp_path / "d" / "train.jsonl", rows).parent))
    assert list(splits.labels.names) == sorted(set(expected), key=str)


@pytest.mark.parametrize("bad, message", [
    ("neg", r"the train labels in column 'label' mix numbers and names \(e\.g\. 0 and 'neg'\); use one kind"),
    ([1], r"train row 3 has a list label in column 'label' \(\[1\]\); expected a class name or number"),
    (float("nan"), r"train row 3 has no label in column 'label' \(1 row in all\)"),
])
def test_labels_that_would_silently_become_extra_classes(tmp_path, bad, message):
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(20)]
    rows[2]["label"] = bad
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows).replace("NaN", "NaN"))
    with pytest.raises(LightftError, match=message):
        prepare_splits(str(tmp_path))


def test_a_split_reads_its_labels_the_way_train_does(tmp_path):
    """Train's classes "1", "2", "neutral" are names; a test file holding only "1" and "2" must match them, in
    training and when a run is evaluated on that file alone (its labels.json the map)."""
    from lightft.data.labels import LabelMap

    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"t{i},{['1', '2', 'neutral'][i % 3]}\n" for i in range(60)))
    (tmp_path / "test.csv").write_text("text,label\n" + "".join(f"u{i},{i % 2 + 1}\n" for i in range(10)))
    splits = prepare_splits(str(tmp_path))
    assert splits.labels.names == ("1", "2", "neutral") and splits.test.labels == [0, 1] * 5
    alone = prepare_splits(str(tmp_path / "test.csv"), label_map=LabelMap(("1", "2", "neutral")), evaluate="test")
    assert alone.test.labels == [0, 1] * 5
    with pytest.raises(LightftError, match=r"^label\(s\) '1', '2' appear in the file \(10 rows\), but the run was trained "
                                           r"on 'neg', 'pos' only; evaluate it on data labelled with those classes"):
        prepare_splits(str(tmp_path / "test.csv"), label_map=LabelMap(("neg", "pos")), evaluate="test")
    # numbers in train: a name in test is a class train never had, said as such
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(60)))
    (tmp_path / "test.csv").write_text("text,label\nu0,1\nu1,neutral\nu2,--3\n")
    with pytest.raises(LightftError, match=r"label\(s\) '--3', 'neutral' appear in the test split \(2 rows\) but never in "
                                           r"train, which has '0', '1'"):
        prepare_splits(str(tmp_path))


@pytest.mark.parametrize("cell", ["--3", "\u00b2"])
def test_label_text_that_only_looks_like_a_number_is_a_name(tmp_path, cell):
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"t{i},{cell if i % 2 else 'x'}\n" for i in range(20)))
    assert prepare_splits(str(tmp_path)).labels.names == tuple(sorted([cell, "x"]))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_an_evaluation_file_with_empty_labels_is_unlabelled(tmp_path, suffix):
    """csv gives an empty cell where jsonl gives null: both mean an unlabelled test file, not a broken one."""
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(40, seed=0))
    if suffix == "csv":
        (tmp_path / "test.csv").write_text("text,label\n" + "".join(f"u{i},\n" for i in range(10)))
    else:
        write_jsonl(tmp_path / "test.jsonl", [{"text": f"u{i}", "label": None} for i in range(10)])
    splits = prepare_splits(str(tmp_path))
    assert "the test split has no labels (column 'label') and was not used" in splits.notes


def test_many_small_classes_still_get_validation_and_test_rows(tmp_path):
    """100 classes of 3 rows: each class's 10% rounds to none; the carve still takes about 10% of the rows."""
    write_jsonl(tmp_path / "all.jsonl", [{"text": f"text {i}", "label": f"c{i % 100}"} for i in range(300)])
    splits = prepare_splits(str(tmp_path / "all.jsonl"), seed=3)
    assert splits.sizes() == {"train": 243, "validation": 27, "test": 30}
    assert all(splits.train.labels.count(c) >= 1 for c in range(100))  # no class loses its last training row
    again = prepare_splits(str(tmp_path / "all.jsonl"), seed=3)
    assert again.validation.texts == splits.validation.texts and again.test.texts == splits.test.texts


def test_an_id_column_taken_for_the_label_is_named(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"text {i}", "id": i} for i in range(300)])
    with pytest.raises(LightftError, match=r"column 'id', taken as the label, has 300 distinct values in 300 training "
                                           r"rows, 300 of them on a single row; is it really the label\? Pass "
                                           r"--label-column .* \(naming it skips this check\)$"):
        prepare_splits(str(tmp_path))
    with pytest.raises(LightftError, match=r"the validation split is empty: no class has two training rows"):
        prepare_splits(str(tmp_path), label_column="id")  # named: the check is skipped, and the carve says what fails


def test_same_column_for_text_and_label(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(20, 0))
    with pytest.raises(LightftError, match=r"column 'text' is both the text and the label column"):
        prepare_splits(str(tmp_path), label_column="text")


def test_tab_separated_file_named_csv(tmp_path):
    (tmp_path / "train.csv").write_text("text\tlabel\n" + "".join(f"row {i}\t{i % 2}\n" for i in range(20)))
    with pytest.raises(LightftError, match=r"train\.csv is tab-separated \(its header 'text\\tlabel' is one column "
                                           r"when split at commas\); name it \.tsv"):
        prepare_splits(str(tmp_path))


def test_unseen_labels_are_listed_briefly(tmp_path):
    rows = synthetic_rows(20, 0)
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", [{"text": f"t{i}", "label": f"label {i}"} for i in range(50)])
    with pytest.raises(LightftError, match=r"'label 15' and 42 more appear in the test split \(50 rows\)") as info:
        prepare_splits(str(tmp_path))
    assert len(str(info.value)) < 300


def test_a_single_file_names_its_rows_and_gets_one_note(tmp_path):
    rows = synthetic_rows(60, seed=0)
    write_jsonl(tmp_path / "all.jsonl", rows)
    splits = prepare_splits(str(tmp_path / "all.jsonl"))
    assert splits.notes == ["a single file was given: 10% of it is held out as test, then 10% of the rest as "
                            "validation (stratified, seed 42)"]
    rows[20]["text"] = " "
    write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(LightftError, match=r"^row 21 of the file has an empty text in column 'text'"):
        prepare_splits(str(tmp_path / "bad.jsonl"))
    rows[20]["text"], rows[3]["label"] = "fine", 7
    write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(LightftError, match=r"^the file's labels in column 'label' mix numbers and names"):
        prepare_splits(str(tmp_path / "mixed.jsonl"))


def test_an_evaluation_file_without_the_label_column_is_unlabelled_not_an_error(tmp_path):
    """GLUE-style unlabelled validation/test files: skipped with a note, like a label column of nulls."""
    write_jsonl(tmp_path / "train.jsonl", synthetic_rows(100, seed=0))
    write_jsonl(tmp_path / "validation.jsonl", [{"text": r["text"]} for r in synthetic_rows(20, seed=1)])
    write_jsonl(tmp_path / "test.jsonl", synthetic_rows(20, seed=2))
    splits = prepare_splits(str(tmp_path))
    assert "the validation split has no labels (column 'label') and was not used" in splits.notes
    assert splits.sizes() == {"train": 90, "validation": 10, "test": 20}
    write_jsonl(tmp_path / "validation.jsonl", [{"body": "x", "label": "neg"}])
    with pytest.raises(LightftError, match=r"^text column 'text' \(--text-column\) not found in the validation split; "
                                           r"its columns are: body, label; every split names its columns alike: rename "
                                           r"the validation split's text column to 'text'$"):
        prepare_splits(str(tmp_path))


def test_test_texts_seen_in_train_are_counted(tmp_path):
    rows = synthetic_rows(100, seed=0)
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:3] + synthetic_rows(17, seed=1))
    with pytest.warns(LightftWarning, match=r"3 of 20 test texts \(15\.0%\) also appear in train word for word"):
        splits = prepare_splits(str(tmp_path))
    assert splits.notes[-1] == "3 of 20 test texts (15.0%) also appear in train word for word, which flatters test accuracy"


def test_labels_that_differ_only_in_case_are_flagged(tmp_path):
    rows = [{"text": f"t{i}", "label": ["pos", "Pos", "neg"][i % 3]} for i in range(60)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.warns(LightftWarning, match=r"labels 'Pos' and 'pos' in column 'label' differ only in case"):
        splits = prepare_splits(str(tmp_path))
    assert splits.labels.names == ("Pos", "neg", "pos")


def test_a_class_without_test_rows_and_a_limit_above_the_rows_are_noted(tmp_path):
    rows = synthetic_rows(40, seed=0) + [{"text": "okay average", "label": "meh"}]  # one row: never held out
    write_jsonl(tmp_path / "train.jsonl", rows)
    splits = prepare_splits(str(tmp_path), limit_train=1000)
    assert "1 class ('meh') has no test rows: its per-class scores show support 0, and macro-F1 counts it only where " \
           "predicted; add rows to measure it" in splits.notes
    assert f"--limit-train 1000 is more than the {len(splits.train)} training rows: all of them are used" in splits.notes
    write_jsonl(tmp_path / "train.jsonl", rows[:-1])
    assert not any("no test rows" in n or "more than the" in n for n in prepare_splits(str(tmp_path), limit_train=5).notes)
