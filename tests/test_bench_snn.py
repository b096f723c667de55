"""bench_snn --quickstart: the processor's vector extensions and XLA's ISA restriction, read from their sources."""

import pytest

from genbounds.experiments.benchmarks.bench_snn import isa_restriction, machine_line, vector_extensions

CPUINFO = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni
processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni
"""


def test_vector_extensions_from_cpuinfo():
    assert vector_extensions(CPUINFO) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                                          "avx512vl", "avx512_vnni"]
    assert vector_extensions(CPUINFO.replace(" avx512f avx512dq avx512bw avx512vl avx512_vnni", "")) == [
        "sse4_2", "avx", "avx2", "fma"]
    assert vector_extensions("") == []                     # no /proc/cpuinfo (macOS): nothing claimed


@pytest.mark.parametrize("flags, isa", [(None, None), ("", None), ("--xla_cpu_max_isa=AVX2", "AVX2"),
                                        ("--xla_force_host_platform_device_count=2 --xla_cpu_max_isa=avx512", "AVX512"),
                                        ("--xla_cpu_enable_fast_math=true", None)])
def test_isa_restriction_from_xla_flags(flags, isa):
    assert isa_restriction(flags) == isa


def test_machine_line_says_both():
    line = machine_line(CPUINFO, "--xla_cpu_max_isa=AVX2", 2)
    assert line == ("CPU: AMD EPYC, 2 cores; vector extensions: sse4_2 avx avx2 fma avx512f avx512dq avx512bw avx512vl "
                    "avx512_vnni; XLA restricted to AVX2 (XLA_FLAGS --xla_cpu_max_isa)")
    assert machine_line(CPUINFO, None, 2).endswith("; XLA uses all of them")
