"""The live lab on other kernels (mmlab.live.vm): the pieces on any machine, the model held
to the runs recorded on Debian's 6.1 and 6.12 (tests/data/vm-*/), and, marked ``vm``, the
kernels booted under QEMU again. The VM tests need qemu-system-x86 and apt's lists of
Debian's kernels; they boot each kernel once (about 15-30 s under TCG) and run one short
scenario there."""

import json
import lzma
import os
import stat
from pathlib import Path

import pytest

from mmlab import scenarios
from mmlab.app import cli
from mmlab.kernels import VM_PROFILES, get_profile, profile_for
from mmlab.live import compare, evidence
from mmlab.live.env import Environment
from mmlab.live.vm import VM, debian, initramfs

DATA = Path(__file__).parent / "data"
STORED = {version: evidence.load(DATA / f"vm-{version}") for version in debian.TESTED}
PROFILE = {"6.1": "6.1", "6.12": "6.12.117"}  # what each tested kernel should behave like


# -- the initramfs ----------------------------------------------------------------------


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, int, tuple[int, int]]]:
    """A cpio "newc" reader, written from the format's description (man 5 cpio): for each
    entry up to TRAILER!!!, {name: (mode, data, mtime, (rdevmajor, rdevminor))}."""
    entries, at = {}, 0
    while True:
        assert at % 4 == 0 and data[at : at + 6] == b"070701", f"bad header at {at}"
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, mtime, size, rdev, namesize = fields[1], fields[5], fields[6], (fields[9], fields[10]), fields[11]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        body = name_at + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data[body : body + size], mtime, rdev)
        at = body + size + (-size % 4)


def test_cpio_holds_directories_files_symlinks_and_devices_the_kernel_can_unpack(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "lib.so").write_bytes(b"\x7fELF and more")
    os.utime(real / "lib.so", (1_700_000_000, 1_700_000_000))
    (tmp_path / "link").symlink_to("real")
    out = tmp_path / "initrd.cpio"
    with out.open("wb") as f:
        archive = initramfs.Cpio(f)
        archive.file("/init", b"#!/bin/sh\n", 0o755)
        archive.device("/dev/console", 5, 1)
        archive.host_path(str(tmp_path / "link" / "lib.so"))
        archive.trailer()
    entries = read_newc(out.read_bytes())
    mode, body, _, _ = entries["init"]
    assert stat.S_ISREG(mode) and mode & 0o777 == 0o755 and body == b"#!/bin/sh\n"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][3] == (5, 1)
    assert stat.S_ISDIR(entries["dev"][0])
    link = str(tmp_path / "link").lstrip("/")
    assert stat.S_ISLNK(entries[link][0]) and entries[link][1] == b"real"  # kept as a link
    mode, body, mtime, _ = entries[str(real / "lib.so").lstrip("/")]
    assert body == b"\x7fELF and more" and mtime == 1_700_000_000  # compiled modules stay valid
    assert all(stat.S_ISDIR(entries[str(p).lstrip("/")][0]) for p in real.parents if str(p) != "/")


def test_the_guest_gets_this_python_its_libraries_and_a_compiled_mmlab(tmp_path):
    entries = read_newc(initramfs.build(tmp_path / "initrd.cpio").read_bytes())
    python = initramfs.interpreter().lstrip("/")
    assert python in entries or any(stat.S_ISLNK(m) for m, *_ in entries.values())
    init = entries["init"][1].decode()
    assert init.startswith(f"#!{initramfs.interpreter()} ") and "mmlab.live.vm.guest" in init
    names = set(entries)
    assert {"lab/mmlab/live/server.py", "lab/mmlab/scenarios/catalogue.py", "lab/mmlab/live/vm/guest.py"} <= names
    assert any(n.startswith("lab/mmlab/live/__pycache__/server.") for n in names)
    assert any(n.endswith("/os.py") for n in names) and not any("/site-packages/" in n for n in names)
    assert any("ld-linux-x86-64.so" in n for n in names) and any("/libc.so" in n for n in names)


# -- finding a kernel -------------------------------------------------------------------


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """An apt-cache on PATH that knows a few kernel packages, as Debian names them."""
    names = [
        "linux-image-6.1.0-9-amd64", "linux-image-6.1.0-10-amd64", "linux-image-6.1.0-10-cloud-amd64",
        "linux-image-6.1.0-10-rt-amd64", "linux-image-6.1.0-10-amd64-dbg", "linux-image-6.12.9+deb12-amd64",
        "linux-image-6.12.10+deb12-amd64", "linux-image-6.12.10+deb12-arm64", "linux-image-6.12-amd64",
    ]  # fmt: skip
    tool = tmp_path / "apt-cache"
    tool.write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(names) + "\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_a_version_names_the_newest_generic_amd64_image_package(fake_apt):
    assert debian.package_for("6.1") == "linux-image-6.1.0-10-amd64"
    assert debian.package_for("6.12") == "linux-image-6.12.10+deb12-amd64"
    assert debian.package_for("6.12.9") == "linux-image-6.12.9+deb12-amd64"
    with pytest.raises(debian.KernelUnavailable, match="apt-get update"):
        debian.package_for("6.6")


def test_a_kernel_that_cannot_be_had_says_what_to_give_instead(tmp_path):
    with pytest.raises(debian.KernelUnavailable, match="no such file"):
        debian.kernel(str(tmp_path / "vmlinuz-missing"))
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"MZ")
    assert debian.kernel(str(image)) == debian.Kernel(image)  # a vmlinuz boots as it is


def test_an_xz_kernel_is_kept_uncompressed_for_a_pvh_boot(tmp_path):
    elf = b"\x7fELF" + bytes(range(256)) * 64
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(b"MZ setup code " * 50 + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailer")
    config = tmp_path / "config"
    config.write_text("CONFIG_X86_64=y\nCONFIG_PVH=y\nCONFIG_SWAP=y\n")
    assert debian.decompress(vmlinuz, config, tmp_path / "vmlinux").read_bytes() == elf
    config.write_text("CONFIG_X86_64=y\n# CONFIG_PVH is not set\n")  # QEMU could not boot it uncompressed
    assert debian.decompress(vmlinuz, config, tmp_path / "other") is None
    vmlinuz.write_bytes(b"MZ" + b"\x28\xb5\x2f\xfd zstd, not xz")
    assert debian.decompress(vmlinuz, tmp_path / "missing-config", tmp_path / "third") is None


def test_the_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert debian.cache_dir() == tmp_path / "mmlab"


def test_without_qemu_the_error_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "vmlinuz").write_bytes(b"MZ")
    assert cli.main(["live", "--kernel", str(tmp_path / "vmlinuz"), "--scenario", "thp-fault"]) == 1
    assert "apt-get install qemu-system-x86" in capsys.readouterr().err


# -- the model against the recorded runs -------------------------------------------------


@pytest.mark.parametrize("version", debian.TESTED)
def test_every_scenario_was_recorded_on_each_kernel(version):
    assert sorted(STORED[version]) == sorted(scenarios.SCENARIOS)
    for stored in STORED[version].values():
        assert stored["kernel"].startswith(version + ".") and stored["machine"]["swap_kb"] == 0
        assert stored["machine"]["thp"] == "madvise" and stored["record"]["unsettled"] == []


@pytest.mark.parametrize("version", debian.TESTED)
def test_each_profile_is_chosen_for_its_kernel_and_cites_its_changes(version):
    machine = next(iter(STORED[version].values()))["machine"]
    assert profile_for(machine["release"], machine["version"]).name == PROFILE[version]
    assert set(VM_PROFILES) == set(PROFILE.values())


# Where the model's profile and the recorded kernel part, and why: each rule names the
# fields it explains, and every one must explain something (else the model or the kernel
# changed, and the rule goes). Checked in Debian's linux-source-6.1 and -6.12 packages.
KNOWN = {
    "6.1": {
        # mm/rmap.c page_remove_rmap(): 6.1 queues a THP for deferred split (and counts
        # thp_deferred_split_page) whenever one of its pages loses a PTE mapping, also when
        # a split freezes the PTEs; 6.12's __folio_remove_rmap() queues only a folio left
        # partly mapped, which is what the model does.
        "every PTE unmap of a THP page queues it for deferred split": lambda scenario, label, path: (
            path == "vmstat.thp_deferred_split_page"
        ),
        # mm/madvise.c madvise_cold_or_pageout_pte_range(): 6.1 splits every PTE-mapped THP
        # it meets; later kernels (and the model) split only one the range covers in part.
        # Reclaim then sees small folios: no THP split or swap fallback there.
        "MADV_COLD/PAGEOUT split a PTE-mapped THP even when the range covers all of it": lambda s, label, path: (
            (s, label) in {("madv-cold", "MADV_COLD again"), ("lazyfree-rewrite-twice", "MADV_PAGEOUT again"),
                           ("pinned-lazyfree", "MADV_PAGEOUT again")}  # fmt: skip
        ),
    },
    "6.12": {
        # Debian builds 6.12 with CONFIG_LRU_GEN_ENABLED=y: the multi-gen LRU keeps a folio's
        # age as a generation in its flags, not as PG_active, so kpageflags shows no active
        # folios; the model has the two-list LRU (as 6.1 and the host run it).
        "the multi-gen LRU sets no PG_active": lambda scenario, label, path: path.endswith(".pages.active"),
    },
}


@pytest.mark.parametrize("version", debian.TESTED)
def test_the_model_agrees_with_the_recorded_kernel_but_for_known_differences(version):
    explained = {reason: 0 for reason in KNOWN[version]}
    unexplained = []
    for name, stored in sorted(STORED[version].items()):
        env = Environment(**stored["machine"])
        model = compare.predict([name], [PROFILE[version]], env)[PROFILE[version]][name]
        for r in compare.disagreements(model, stored["record"]):
            reasons = [reason for reason, rule in KNOWN[version].items() if rule(name, r.label, r.path)]
            for reason in reasons:
                explained[reason] += 1
            if not reasons:
                unexplained.append(f"{name} step {r.step} {r.label}: {r.path}: model {r.left!r}, {version} {r.right!r}")
    assert unexplained == []
    assert all(explained.values()), f"rules that explain nothing any more: {explained}"


# -- the kernels booted again (marked vm) -------------------------------------------------


def recorded_again(vm, version: str, name: str) -> list[str]:
    """Run a scenario in the VM and list where it departs from the stored run; a run that
    departs is repeated (up to three runs, merged), as the host's live tests do."""
    stored = STORED[version][name]["record"]
    live = vm.record(name)
    if compare.disagreements(stored, live):
        live = vm.record(name, runs=3)
    return [f"{r.label}: {r.path}: recorded {r.left!r}, now {r.right!r}" for r in compare.disagreements(stored, live)]


@pytest.mark.vm
def test_6_1_boots_and_behaves_as_recorded():
    with VM("6.1", say=lambda *a: None) as vm:
        print(f"{vm}: booted in {vm.boot_seconds:.1f} s")
        assert vm.env.release.startswith("6.1.") and vm.env.thp == "madvise" and vm.env.swap_kb == 0
        assert vm.env.root and not vm.env.pagemap_scan  # PAGEMAP_SCAN came in 6.7
        assert profile_for(vm.env.release, vm.env.version) == get_profile("6.1")
        assert recorded_again(vm, "6.1", "lazyfree-rewrite") == []


@pytest.mark.vm
def test_mmlab_live_on_6_12_agrees_with_its_profile(capsys):
    """The lazyfree THPs of free-then-mlock-onfault are split, then discarded, as on 6.12.117."""
    argv = ["live", "--kernel", "6.12", "--scenario", "free-then-mlock-onfault", "--runs", "1", "--json"]
    status = cli.main(argv)
    document = json.loads(capsys.readouterr().out)
    print(f"6.12 booted in {document['qemu']['boot_seconds']:.1f} s ({document['qemu']['accel']})")
    assert document["environment"]["release"].startswith("6.12.") and document["profile"] == "6.12.117"
    assert status == 0, [row for row in document["scenarios"]["free-then-mlock-onfault"]["rows"]
                         if row["verdict"] == "differ"]  # fmt: skip
    stored = STORED["6.12"]["free-then-mlock-onfault"]["record"]
    assert compare.disagreements(stored, document["scenarios"]["free-then-mlock-onfault"]["host"]) == []
