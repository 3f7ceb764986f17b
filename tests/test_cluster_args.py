"""--cluster's bad input in the first environment, which has no Ray (the [ray] extra is CI's
second environment's): one line naming the extra, exit 2, before any conversion; a value that is
neither ray://HOST:PORT nor auto is one line, exit 2. The cluster itself is tested in
tests/quantize/test_cluster.py."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import one_error_line, run_tool
from test_shards import convert, converted, zoo  # noqa: F401 (fixture)


def test_this_environment_has_no_ray():
    assert importlib.util.find_spec("ray") is None  # (else the next test proves nothing)


def test_cluster_without_the_ray_extra_is_one_line_naming_it(zoo, tmp_path):
    result = convert(zoo, tmp_path / "out", tmp_path / "c.log", "--cluster", "ray://127.0.0.1:10001")
    assert result.returncode == 2
    assert one_error_line(result).endswith("--cluster needs Ray: pip install 'modelzoo[ray]'")
    assert converted(tmp_path / "c.log") == [] and not (tmp_path / "out").exists()
    sync = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", tmp_path / "m", "--cache_dir",
                    tmp_path / "cache", "--ir", "FP16", "--cluster", "auto")
    assert sync.returncode == 2
    assert one_error_line(sync).endswith("--cluster needs Ray: pip install 'modelzoo[ray]'")


@pytest.mark.parametrize("value", ["ray:/host:1", "host:10001", "ray://host", "ray://host:0", "ray://host:99999"])
def test_a_cluster_that_is_not_an_address_is_one_line(zoo, tmp_path, value):
    result = convert(zoo, tmp_path / "out", tmp_path / "c.log", "--cluster", value)
    assert result.returncode == 2
    assert f"expected ray://HOST:PORT or auto (got {value!r})" in one_error_line(result)
