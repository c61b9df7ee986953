"""Tokenizing once, and saying how many texts max length cuts."""

from lightft.data.tokenize import cut_note


def test_cut_note_counts_texts_that_fill_max_length():
    ids = [[1, 2, 3], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1]]
    assert cut_note(ids, 5, "train texts") == ("2 of 4 train texts (50.0%) reach --max-length 5 tokens, where longer "
                                              "texts are cut; a larger --max-length keeps more of them, at more time "
                                              "per text")
    assert cut_note(ids, 6, "train texts") is None
