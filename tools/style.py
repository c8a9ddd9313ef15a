#!/usr/bin/python3
"""style - outbox's C source style checker (make check runs it first)

Usage: tools/style.py [FILE...]
    Without FILE: every .c and .h file of the program, of fuzz/ and of
    tests/unit/. Prints "file:line: rule: message" for each violation,
    then the exceptions per rule, and exits 1 if there was a violation or
    if the exceptions differ from tools/style-budget.

Rules (the rule name is what an exception names):
    banned           a call of a banned function; its exception names the
                     function itself ("allow sprintf"), see BANNED
    long-line        more than 80 columns, a tab counting to the next
                     multiple of 8
    trailing-space   blanks or a CR at the end of a line
    indent           indentation is tabs; at most 7 spaces after them
                     (continuation lines), never a space before a tab
    cpp-comment      a // comment; outbox uses /* */ only
    keyword-space    "if(", "for(", "while(", "switch(", "return(":
                     a keyword is followed by a space
    module-comment   the file does not open with its manual:
                     "/*", " * NAME", " *<TAB>name - what it is"
    function-comment a function definition is not preceded by its
                     one-line "/* name - what it does */" comment
                     (after the previous function; usually just above
                     it, or above the data it uses); in
                     tests/unit/ and fuzz/, a static function by a
                     comment saying what the test or helper checks (the
                     others are documented in their header); main() and
                     the libFuzzer entry points by nothing
    final-newline    the file does not end with exactly one newline

Exceptions are written on the offending line, or alone on the line just
above it, and carry a reason:

    n = sprintf(b, "%d", x);    /* style: allow sprintf (why it is safe) */

Every exception is counted. The count per rule must equal the one in
tools/style-budget, so that adding (or removing) one is a visible change
to that file too. An exception that excuses nothing is a violation.
"""

import os
import re
import sys

MAX_COLUMNS = 80
TAB = 8

# banned function -> what to use instead
BANNED = {
    "sprintf": "snprintf() with a truncation check, or buf_printf()",
    "vsprintf": "vsnprintf() with a truncation check, or buf_vprintf()",
    "strcpy": "snprintf(), buf_puts() or memcpy() with a checked length",
    "strncpy": "snprintf() or memcpy() with a checked length",
    "strcat": "buf_puts() or buf_printf()",
    "strncat": "buf_append() or buf_printf()",
    "gets": "fgets() or getline()",
    "atoi": "strtol() with range and end checks",
    "atol": "strtol() with range and end checks",
    "atoll": "strtoll() with range and end checks",
    "atof": "strtod() with an end check",
    "strtok": "strtok_r()",
    "alloca": "a fixed array with a checked size, or a buf",
    "tmpnam": "mkstemp() or open(O_EXCL)",
    "tempnam": "mkstemp() or open(O_EXCL)",
    "mktemp": "mkstemp() or mkdtemp()",
    "system": "fork() and exec*() without a shell",
}

RULES = ["long-line", "trailing-space", "indent", "cpp-comment",
         "keyword-space", "module-comment", "function-comment",
         "final-newline"]

# what these do is the file's manual
ENTRY_POINTS = {"main", "LLVMFuzzerInitialize", "LLVMFuzzerTestOneInput"}

SOURCE_DIRS = ["util", "conf", "message", "queue", "relay", "fuzz",
               "tests/unit"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET = os.path.join(ROOT, "tools", "style-budget")

MARKER = re.compile(r"/\*\s*style:\s*allow\s+([a-z0-9_-]+)\s*(\(([^)]*)\))?")
CALL = re.compile(r"(?<![\w.>])(%s)\s*\(" % "|".join(BANNED))
KEYWORD = re.compile(r"\b(if|for|while|switch|return)\(")
# the start of a function definition: at column 0, a type, a name, "("
DEF_START = re.compile(r"^(?!typedef\b|extern\b)"
                       r"[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(")


def split(text):
    """(code, comment, slashes): per line, code has comments and the
    contents of string and character literals blanked, comment is the
    comment text found on the line, with its delimiters ("" if none);
    slashes is the set of line numbers where a // comment starts"""
    code, comm, slashes = [], [], set()
    cur_code, cur_comm = [], []
    state = "code"      # code, block, line, str, chr
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "\n":
            if state == "line":
                state = "code"
            code.append("".join(cur_code))
            comm.append("".join(cur_comm))
            cur_code, cur_comm = [], []
            i += 1
            continue
        if state == "code":
            if c == "/" and nxt == "*":
                state = "block"
                cur_comm.append("/*")
                cur_code.append("  ")
                i += 2
                continue
            if c == "/" and nxt == "/":
                state = "line"
                slashes.add(len(code) + 1)
                cur_comm.append("//")
                cur_code.append("  ")
                i += 2
                continue
            if c in "\"'":
                state = "str" if c == '"' else "chr"
            cur_code.append(c)
        elif state == "block":
            if c == "*" and nxt == "/":
                state = "code"
                cur_comm.append("*/")
                cur_code.append("  ")
                i += 2
                continue
            cur_comm.append(c)
            cur_code.append(" " if c != "\t" else "\t")
        elif state == "line":
            cur_comm.append(c)
            cur_code.append(" ")
        else:
            quote = '"' if state == "str" else "'"
            if c == "\\" and nxt not in ("", "\n"):
                cur_code.append("  ")
                i += 2
                continue
            if c == quote:
                state = "code"
                cur_code.append(c)
            else:
                cur_code.append(" ")
        i += 1
    if cur_code or cur_comm:
        code.append("".join(cur_code))
        comm.append("".join(cur_comm))
    return code, comm, slashes


def columns(line):
    """the width of line with tabs expanded to multiples of TAB"""
    col = 0
    for c in line:
        col = (col // TAB + 1) * TAB if c == "\t" else col + 1
    return col


def is_test(path):
    return path.startswith("tests/") or path.startswith("fuzz/")


class File:
    def __init__(self, path, text):
        self.path = path
        self.text = text
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.code, self.comm, self.slashes = split(text)
        self.found = []         # (line, rule, message, exception name)

    def report(self, lineno, rule, message, name=None):
        self.found.append((lineno, rule, message, name or rule))

    # line rules

    def check_lines(self):
        for no, (raw, code) in enumerate(zip(self.lines, self.code), 1):
            if columns(raw) > MAX_COLUMNS:
                self.report(no, "long-line", "%d columns, more than %d"
                            % (columns(raw), MAX_COLUMNS))
            if raw != raw.rstrip(" \t\r\f\v"):
                self.report(no, "trailing-space",
                            "blanks at the end of the line")
            lead = re.match(r"[ \t]*", raw).group(0)
            if raw.strip() and (re.search(r" \t", lead) or
                                re.search(r" {8}", lead)):
                self.report(no, "indent", "indent with tabs, then at most "
                            "7 spaces")
            for m in CALL.finditer(code):
                self.report(no, "banned", "%s() is banned, use %s"
                            % (m.group(1), BANNED[m.group(1)]), m.group(1))
            m = KEYWORD.search(code)
            if m:
                self.report(no, "keyword-space", "a space after '%s'"
                            % m.group(1))

    def check_cpp_comments(self):
        for no in sorted(self.slashes):
            self.report(no, "cpp-comment", "use /* */, not //")

    # file rules

    def check_module_comment(self):
        stem = os.path.splitext(os.path.basename(self.path))[0]
        head = self.lines[:3] + ["", "", ""]
        if head[0] != "/*" or head[1] != " * NAME" or \
                not head[2].startswith(" *\t%s - " % stem):
            self.report(1, "module-comment", "the file opens with its "
                        "manual: \"/*\", \" * NAME\", \" *\\t%s - what it "
                        "is\"" % stem)

    def check_final_newline(self):
        if not self.text.endswith("\n"):
            self.report(len(self.lines), "final-newline",
                        "no newline at the end of the file")
        elif self.text.endswith("\n\n"):
            self.report(len(self.lines), "final-newline",
                        "blank lines at the end of the file")

    def check_functions(self):
        for start, name in self.definitions():
            if name in ENTRY_POINTS or (is_test(self.path) and
                                        not self.code[start].startswith(
                                            "static")):
                continue
            if not self.has_comment(start, name):
                want = ("a comment saying what it checks" if
                        is_test(self.path) else
                        "its comment \"/* %s - what it does */\"" % name)
                self.report(start + 1, "function-comment",
                            "function %s is not preceded by %s"
                            % (name, want))

    def definitions(self):
        """(index of the first line, name) of each function definition:
        a declarator at column 0 whose closing line is followed by a
        line holding only "{" """
        code = self.code
        i = 0
        while i < len(code):
            m = DEF_START.match(code[i])
            if not m or code[i].split("(")[0].count("=") or \
                    code[i].startswith(("#", "static_assert")):
                i += 1
                continue
            j = i
            while j < len(code) and j - i < 12:
                line = code[j].rstrip()
                if line.endswith((";", "{", "}")) or \
                        (j > i and not code[j][:1].isspace()):
                    break
                if j + 1 < len(code) and code[j + 1].rstrip() == "{":
                    yield i, m.group(1)
                    break
                j += 1
            i = j + 1

    def has_comment(self, start, name):
        """is the function at line index start preceded by its comment:
        after the previous function's closing brace, usually on the line
        just above, or above the data (a struct, a static variable)
        that the function uses"""
        k = start - 1
        while k >= 0 and self.lines[k] != "}":
            first = self.lines[k].lstrip()
            if first.startswith("/*") and not self.code[k].strip():
                if is_test(self.path) or re.match(
                        r"/\* %s - \S" % re.escape(name), first):
                    return True
            k -= 1
        return False

    def check(self):
        self.check_lines()
        self.check_cpp_comments()
        self.check_module_comment()
        self.check_functions()
        self.check_final_newline()


def exceptions_on(f):
    """{line number: [[name, has a reason, marker's line, used]]}: the
    exceptions that apply to each line; name is a rule, or for the
    banned rule the function"""
    out = {}
    for no, comm in enumerate(f.comm, 1):
        for m in MARKER.finditer(comm):
            rule = m.group(1)
            reason = (m.group(3) or "").strip()
            alone = not f.code[no - 1].strip()
            target = no + 1 if alone else no
            out.setdefault(target, []).append([rule, bool(reason), no,
                                               False])
    return out


def load_budget():
    budget = {}
    try:
        with open(BUDGET, encoding="utf-8") as fp:
            for no, line in enumerate(fp, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    sys.exit("%s:%d: expected \"rule count\""
                             % (os.path.relpath(BUDGET), no))
                budget[parts[0]] = int(parts[1])
    except FileNotFoundError:
        pass
    return budget


def default_files():
    files = ["sendmail.c"]
    for d in SOURCE_DIRS:
        full = os.path.join(ROOT, d)
        if os.path.isdir(full):
            files += sorted(os.path.join(d, n) for n in os.listdir(full)
                            if n.endswith((".c", ".h")))
    return files


def main(argv):
    os.chdir(ROOT)
    explicit = argv[1:]
    files = explicit or default_files()
    violations, counts, nlines = 0, {}, 0
    for path in files:
        with open(path, encoding="utf-8", errors="surrogateescape") as fp:
            f = File(os.path.normpath(path), fp.read())
        nlines += len(f.lines)
        f.check()
        allowed = exceptions_on(f)
        for no, rule, message, name in sorted(f.found):
            hit = [e for e in allowed.get(no, []) if e[0] == name]
            if hit:
                for e in hit:
                    e[3] = True
                continue
            print("%s:%d: %s: %s" % (f.path, no, rule, message))
            violations += 1
        for no, marks in sorted(allowed.items()):
            for rule, reason, at, used in marks:
                if rule not in RULES and rule not in BANNED:
                    print("%s:%d: exception: no rule named %s (for a "
                          "banned function, name the function)"
                          % (f.path, at, rule))
                    violations += 1
                elif not reason:
                    print("%s:%d: exception: \"style: allow %s\" needs "
                          "a reason in parentheses" % (f.path, at, rule))
                    violations += 1
                elif not used:
                    print("%s:%d: exception: nothing here breaks %s; "
                          "remove the exception" % (f.path, at, rule))
                    violations += 1
                else:
                    counts[rule] = counts.get(rule, 0) + 1
    total = sum(counts.values())
    budget = load_budget() if not explicit else dict(counts)
    for rule in sorted(set(budget) | set(counts)):
        if budget.get(rule, 0) != counts.get(rule, 0):
            print("style: %d exception%s for %s, tools/style-budget allows "
                  "%d: change the budget in the same commit"
                  % (counts.get(rule, 0),
                     "" if counts.get(rule, 0) == 1 else "s", rule,
                     budget.get(rule, 0)))
            violations += 1
    shown = ", ".join("%s %d" % (r, counts[r]) for r in sorted(counts))
    print("style: %d files, %d lines, %d violation%s; exceptions: %s "
          "(total %d, %s)"
          % (len(files), nlines, violations, "" if violations == 1 else "s",
             shown or "none", total, "budget not checked: files named"
             if explicit else "budget %d" % sum(budget.values())))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
