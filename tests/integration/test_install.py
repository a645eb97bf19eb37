"""
make install into a temporary PREFIX: the programs, the man pages, the
Python package, the systemd units (checked with systemd-analyze verify
where it exists) and the bash completion that simq(1) mentions.
"""

import os
import shutil
import subprocess

import harness
from harness import check, eq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _install(ctx):
    if shutil.which("make") is None:
        raise harness.Skip("no make")
    prefix = os.path.join(ctx.mkdtemp("prefix"), "usr")
    r = subprocess.run(["make", "-C", ROOT, "install", "PREFIX=" + prefix],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    check(r.returncode == 0, "make install failed:\n%s" %
          r.stdout.decode(errors="replace")[-3000:])
    return prefix


def test_make_install(ctx):
    prefix = _install(ctx)
    for p in ("bin/simqd", "bin/simq-worker", "bin/simq"):
        check(os.access(os.path.join(prefix, p), os.X_OK), p)
    for p in ("share/man/man1/simq.1", "share/man/man1/simq-worker.1",
              "share/man/man8/simqd.8",
              "lib/systemd/system/simqd.service",
              "lib/systemd/system/simq-worker@.service",
              "share/bash-completion/completions/simq"):
        check(os.path.isfile(os.path.join(prefix, p)), "installs " + p)
    py = [d for d in os.listdir(os.path.join(prefix, "lib"))
          if d.startswith("python")]
    eq(len(py), 1, "one Python directory under lib")
    check(os.path.isfile(os.path.join(prefix, "lib", py[0], "dist-packages",
                                      "simq", "__init__.py")),
          "installs the Python package")
    # The units name the installed programs, and the token by file.
    for u, prog in (("simqd.service", "simqd"),
                    ("simq-worker@.service", "simq-worker")):
        with open(os.path.join(prefix, "lib/systemd/system", u)) as f:
            text = f.read()
        check("ExecStart=%s/bin/%s " % (prefix, prog) in text,
              "%s runs %s/bin/%s" % (u, prefix, prog))
        check("LoadCredential=token:/etc/simq/token" in text and
              "--token-file %d/token" in text,
              "%s reads the token from a file" % u)
        check("@" + "BINDIR@" not in text, "%s: every path filled in" % u)
    # The completion loads in bash and completes simq's commands.
    if shutil.which("bash"):
        comp = os.path.join(prefix, "share/bash-completion/completions/simq")
        r = subprocess.run(
            ["bash", "-c", 'source "$1" && complete -p simq && '
             'COMP_WORDS=(simq sub) COMP_CWORD=1 && '
             '$(complete -p simq | sed "s/.*-F \\([^ ]*\\) .*/\\1/") && '
             'printf "%s\\n" "${COMPREPLY[@]}"', "bash", comp],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        eq(r.returncode, 0, "the completion loads: " + out)
        check("submit" in out.split(), "completes 'sub' to submit: " + out)


def test_systemd_units_verify(ctx):
    if shutil.which("systemd-analyze") is None:
        raise harness.Skip("no systemd-analyze")
    prefix = _install(ctx)
    units = ctx.mkdtemp("units")
    src = os.path.join(prefix, "lib/systemd/system")
    shutil.copy(os.path.join(src, "simqd.service"), units)
    # A template is verified as one of its instances.
    shutil.copy(os.path.join(src, "simq-worker@.service"),
                os.path.join(units, "simq-worker@1.service"))
    env = dict(os.environ)
    args = []
    if shutil.which("man"):
        env["MANPATH"] = os.path.join(prefix, "share/man")
    else:
        args = ["--man=no"]	# Documentation=man: cannot be looked up
    r = subprocess.run(["systemd-analyze", "verify"] + args +
                       [os.path.join(units, "simqd.service"),
                        os.path.join(units, "simq-worker@1.service")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=60)
    out = r.stdout.decode(errors="replace")
    eq(r.returncode, 0, "systemd-analyze verify: " + out)
    eq(out.strip(), "", "systemd-analyze verify has nothing to say")
