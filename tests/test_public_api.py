import visionloop
import visionloop.errors


def test_public_names_sorted_and_complete() -> None:
    for module in (visionloop, visionloop.errors):
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)
    exported = {n for n in dir(visionloop.errors) if isinstance(getattr(visionloop.errors, n), type)}
    errors = {n for n in exported if issubclass(getattr(visionloop.errors, n), Exception)}
    assert errors == set(visionloop.errors.__all__)
