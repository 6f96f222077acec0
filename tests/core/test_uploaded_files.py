"""Finding the file sent for a path an import names (core.uploaded_files.find_uploaded)."""

from __future__ import annotations

from visionloop.core.uploaded_files import find_uploaded

SENT = ["set/images/a.jpg", "set/b.jpg", "set/x/c.jpg", "set/y/c.jpg"]


def test_the_same_path_a_path_ending_in_it_or_a_single_base_name() -> None:
    assert find_uploaded("set/b.jpg", SENT) == ("set/b.jpg", "")
    assert find_uploaded("images/a.jpg", SENT) == ("set/images/a.jpg", "")
    assert find_uploaded("/images\\a.jpg", SENT) == ("set/images/a.jpg", "")  # Windows separators
    assert find_uploaded("elsewhere/a.jpg", SENT) == ("set/images/a.jpg", "")  # by its name alone
    assert find_uploaded("x/c.jpg", SENT) == ("set/x/c.jpg", "")


def test_none_or_several_say_why() -> None:
    assert find_uploaded("c.jpg", SENT) == (None, "several uploaded files have that name")
    assert find_uploaded("d.jpg", SENT) == (None, "it was not among the uploaded images")
    assert find_uploaded("ages/a.jpg", SENT)[0] == "set/images/a.jpg"  # not a path suffix: the base name
