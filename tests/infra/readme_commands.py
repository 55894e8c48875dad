"""Checks that every `aws` and `sam` command of the README's "Deploy to AWS" section exists and
takes the options it is given, offline: `aws` commands against the pinned AWS CLI's own command
tables (its service models and its customizations such as `s3 sync` or `cloudfront
create-invalidation --paths`), `sam` commands against the pinned SAM CLI's `--help`.

    python readme_commands.py README.md SAM_EXECUTABLE

Run with the Python of the virtual environment the AWS CLI is installed in (tests/infra/lint.sh).
"""

import re
import shlex
import subprocess
import sys

from awscli.clidriver import create_clidriver


def deploy_section(readme: str) -> str:
    start = readme.index("\n## Deploy to AWS")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def shell_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def commands(block: str) -> list[list[str]]:
    """The simple commands of a block: continuation lines joined, comments dropped, the
    commands inside `$(...)` taken out, then split on pipes and `&&`."""
    text = block.replace("\\\n", " ")
    found: list[str] = []
    # Innermost $(...) first, replaced by a placeholder word in the command around it.
    while True:
        inner = re.search(r"\$\(([^()]*)\)", text)
        if not inner:
            break
        found.append(inner.group(1))
        text = text[: inner.start()] + "SUBSTITUTED" + text[inner.end() :]
    for line in text.splitlines():
        found.append(line)
    out = []
    for line in found:
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        for part in re.split(r"\|\||&&|\|", line):
            words = shlex.split(part, posix=True) if part.strip() else []
            # Assignments before the command (`bucket=...`) are not the command.
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                words.pop(0)
            if words:
                out.append(words)
    return out


def flags(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0][2:] for w in words if w.startswith("--")]


def check_aws(words: list[str], driver, global_args) -> list[str]:
    problems = []
    table = driver._get_command_table()
    positional = [w for w in words[1:] if not w.startswith("-")]
    if not positional or positional[0] not in table:
        return [f"aws: no service {positional[:1]}: {' '.join(words)}"]
    command = table[positional[0]]
    path = [positional[0]]
    for word in positional[1:]:
        sub = command.subcommand_table if hasattr(command, "subcommand_table") else None
        if sub is None and hasattr(command, "_get_command_table"):
            sub = command._get_command_table()
        if not sub or word not in sub:
            break
        command = sub[word]
        path.append(word)
    if len(path) < 2:
        return [f"aws {path[0]}: no operation in {' '.join(words)}"]
    arguments = set(command.arg_table) | set(global_args)
    for flag in flags(words):
        if flag not in arguments:
            problems.append(f"aws {' '.join(path)}: no option --{flag}")
    return problems


def check_sam(words: list[str], sam: str) -> list[str]:
    sub = words[1]
    help_text = subprocess.run([sam, sub, "--help"], capture_output=True, text=True, check=False).stdout
    if not help_text.strip():
        return [f"sam: no command {sub}"]
    options = set(re.findall(r"--([a-z0-9][a-z0-9-]*)", help_text))
    return [f"sam {sub}: no option --{flag}" for flag in flags(words) if flag not in options]


def main() -> int:
    readme_path, sam = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        section = deploy_section(f.read())
    driver = create_clidriver()
    global_args = driver._get_argument_table()
    checked = 0
    problems = []
    for block in shell_blocks(section):
        for words in commands(block):
            if words[0] == "aws":
                problems += check_aws(words, driver, global_args)
            elif words[0] == "sam":
                problems += check_sam(words, sam)
            else:
                continue
            checked += 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if checked < 10:
        print(f"only {checked} aws and sam commands found in the deploy section", file=sys.stderr)
        return 1
    if problems:
        return 1
    print(f"{checked} aws and sam commands of the README's deploy section exist and take their options")
    return 0


if __name__ == "__main__":
    sys.exit(main())
