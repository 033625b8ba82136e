import pytest

# The contract classes live outside test modules; rewrite their asserts so failures show values.
pytest.register_assert_rewrite("tests.contracts")
