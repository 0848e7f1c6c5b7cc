#!/usr/bin/env python3
"""Checks that a document's quoted output is what the tool prints today.

check-doc.py DOC SECTION DUET ROOT

Runs, in order, every command quoted in the code blocks of DOC's section SECTION (the `##`
heading that starts with it) and checks the lines quoted after it against what it printed:

  $ ./duet ARGS...         runs DUET ARGS... (stdout and stderr); `./duet gdb SCENARIO ARGS`
                           runs gdb in batch mode with the helpers, with each following
                           `(gdb) COMMAND` line as a command
  $ grep ... FILE          runs as written (a shell command on a file an earlier one wrote)
  any other line           must appear in that output: exactly, or, where it holds `...`,
                           with each piece between the dots in one output line, in order
                           (a line of `...` alone, or starting with `...`, checks nothing)

A block with no `$` line quotes the output of the nearest command before it. The commands run
in a scratch directory where `scenarios/`, `tests/` and `tools/` are the repository's, with
DUET_PROGRAM=./duet (so reproduce lines read as the document quotes them). Exit 1 naming each
quoted line that was not printed.
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile


def blocks(doc, section):
    """The code blocks of the section, each a list of lines."""
    inside = False
    current = None
    found = []
    for line in doc.splitlines():
        if line.startswith("## "):
            inside = line[3:].startswith(section)
            continue
        if not inside:
            continue
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                found.append(current)
                current = None
        elif current is not None:
            current.append(line.rstrip())
    return found


def matches(quoted, output_lines):
    if "..." not in quoted:
        return quoted in output_lines
    pieces = [p.strip() for p in quoted.split("...") if p.strip()]
    for line in output_lines:
        at = 0
        for piece in pieces:
            at = line.find(piece, at)
            if at < 0:
                break
            at += len(piece)
        else:
            return True
    return False


def run(command, gdb_commands, duet, root, scratch):
    argv = shlex.split(command)
    env = dict(os.environ, DUET_PROGRAM="./duet")
    if argv[0] == "./duet" and len(argv) > 1 and argv[1] == "gdb":
        gdb = ["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off",
               "-x", str(root / "tools/gdb/duet.py")]
        for c in gdb_commands:
            gdb += ["-ex", c]
        gdb += ["-ex", "kill", "--args", duet, "run"] + argv[2:]
        argv = gdb
    elif argv[0] == "./duet":
        argv = [duet] + argv[1:]
    else:
        argv = ["bash", "-c", command]
    r = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    return [line.rstrip() for line in (r.stdout + r.stderr).splitlines()]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    doc_path, section, duet = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
    root = pathlib.Path(sys.argv[4]).resolve()
    found = blocks(pathlib.Path(doc_path).read_text(), section)
    if not found:
        sys.exit(f"check-doc: no code blocks in section '{section}' of {doc_path}")
    failures = 0
    checked = 0
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("scenarios", "tests", "tools"):
            os.symlink(root / name, pathlib.Path(scratch) / name)
        output = None
        for block in found:
            command = None
            gdb_commands = []
            quoted = []
            for line in block:
                if line.startswith("$ "):
                    command = line[2:]
                elif line.startswith("(gdb) "):
                    gdb_commands.append(line[len("(gdb) "):])
                elif line.strip() and line.strip() != "..." and not line.startswith("..."):
                    quoted.append(line)
            if command is not None:
                output = run(command, gdb_commands, duet, root, scratch)
            elif output is None:
                sys.exit(f"check-doc: a block quotes output before any command: {block[0]}")
            missing = [q for q in quoted if not matches(q, output)]
            checked += len(quoted)
            failures += len(missing)
            for q in missing:
                print(f"check-doc: {doc_path}: not printed by `{command}`:\n    {q}")
            if missing:
                print("  what it printed:\n" + "\n".join("    " + o for o in output[:60]))
    if failures:
        sys.exit(1)
    print(f"check-doc: {checked} quoted lines of {doc_path} ({section}) are what the tool prints")


if __name__ == "__main__":
    main()
