# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL lexer and splitter: a migration file's text into statements, the way psql splits it.

The statement rules (rules.py) read only what a Statement carries; Words says which words
that is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple


WHITESPACE = ' \t\n\r\f\v'
# Character classes as PostgreSQL's lexer has them: a letter, "_" or any non-ASCII character
# starts an identifier; digits and "$" may follow. They are written as "everything but these
# ASCII characters", which compiles in microseconds where a range up to U+10FFFF takes
# milliseconds: the module pays for compiling its patterns on every run.
IDENT_START = r'[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]'
IDENT_CONT = r'[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]'
_TAG_CONT = r'[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]'
IDENT = IDENT_START + IDENT_CONT + '*'
# ASCII characters that matter to nobody: not whitespace, ; ' " $ ( ) \\ / -, letters or "_".
_INERT = r'[\x00-\x08\x0e-\x1f!#%&*+,.0-9:<=>?@\[\]^\x60{|}~\x7f]'
# One lexical token at a time, after the whitespace before it; the group that matched tells its
# kind: a -- comment, the start of a /* comment, a word, a run of characters that matter to
# nobody (digits, operators, commas), or a single other character (whitespace only at the very
# end of the text).
TOKEN_RE = re.compile(r'[ \t\n\r\f\v]*(?:(--[^\n]*)|(/\*)|(' + IDENT + ')|(' + _INERT + '+)|(.))', re.DOTALL)
LINE_COMMENT = 1  # the numbers of TOKEN_RE's groups
BLOCK_COMMENT = 2
WORD = 3
INERT = 4
# Once a statement's leading keywords are known, everything up to the next character that can
# end it, open a literal, a comment or a parenthesis is skipped in one match: whitespace, inert
# characters, a "-" or "/" that does not open a comment, and whole identifiers (so that the "$"
# inside one is not taken for a dollar quote) except one right before a quote, which the token
# loop reads (E'...' takes backslash escapes).
SKIP_RE = re.compile(r'(?:[ \t\n\r\f\v]|' + _INERT + '|' + IDENT + "(?!'|" + IDENT_CONT + r')|-(?!-)|/(?!\*))+')
DOLLAR_TAG = re.compile(r'\$(?:' + IDENT_START + _TAG_CONT + r'*)?\$')
COMMENT_RE = re.compile(r'--[^\n]*|/\*.*?\*/', re.DOTALL)
# SET [SESSION | LOCAL] standard_conforming_strings TO | = value, and RESET of it or of ALL,
# comments removed: the scope and the value, without quotes.
STANDARD_STRINGS_SET_RE = re.compile(
    r'SET\s+(?:(SESSION|LOCAL)\s+)?(?:"standard_conforming_strings"|'
    r'standard_conforming_strings\b)\s*(?:=|TO\b)\s*[\'"]?([^\s\'";]*)',
    re.IGNORECASE,
)
STANDARD_STRINGS_RESET_RE = re.compile(r'RESET\s+(?:"standard_conforming_strings"|standard_conforming_strings\b|ALL\b)', re.IGNORECASE)
# The line that ends the rows of a COPY ... FROM STDIN in a psql script.
COPY_DATA_END_RE = re.compile(r"^\\\.\r?$", re.M)
# How many leading words outside parentheses and literals the splitter keeps of every statement:
# enough for the longest rule that reads only the start (CREATE UNIQUE INDEX CONCURRENTLY).
LEADING_WORDS = 4
# Statements the splitter keeps every such word of, as rules read their end: ALTER ... DETACH
# PARTITION ... CONCURRENTLY, COPY ... FROM STDIN.
EVERY_WORD_OF = ('ALTER', 'COPY')


class Words(namedtuple('Words', 'kept complete')):
    """The words outside parentheses and literals of a statement, upper-cased, as the splitter
    kept them: kept holds at least the first LEADING_WORDS (fewer when the statement has fewer),
    and every one when complete (a statement starting with a word of EVERY_WORD_OF, a routine
    definition, whose BEGIN ATOMIC ... END the splitter follows, or a short statement).

    Rules read them through first() and every(), which refuse to read what was not kept.
    """

    __slots__ = ()

    def first(self, n):
        """The first n words, '' for each the statement does not have."""
        if n > LEADING_WORDS:
            raise ValueError('the splitter keeps the first %d words of a statement, not %d' % (LEADING_WORDS, n))
        words = list(self.kept[:n])
        return words + [''] * (n - len(words))

    def every(self):
        """Every word; only of a statement the splitter kept every word of."""
        if not self.complete:
            raise ValueError('the splitter keeps every word only of %s statements and routine definitions' % ', '.join(EVERY_WORD_OF))
        return list(self.kept)


class Statement(object):
    """One SQL statement of a file: its text, the line it starts on and its words (Words)."""

    __slots__ = ('text', 'line', 'words', 'escapes')

    def __init__(self, text, line, words, escapes=False):
        self.text = text
        self.line = line
        self.words = words
        self.escapes = escapes  # a backslash escapes in its '' literals (standard_conforming_strings off)

    def __repr__(self):
        return 'Statement(line=%d, %r)' % (self.line, self.text[:40])


def line_of(text, offset):
    return text.count('\n', 0, offset) + 1


# The rest of a quoted literal after its opening quote, up to and including the closing one: a
# doubled quote stands for itself; in E'' strings a backslash escapes the next character.
QUOTED_REST = {
    ("'", False): re.compile(r"(?:[^']|'')*'"),
    ("'", True): re.compile(r"(?:[^'\\]|''|\\.)*'", re.DOTALL),
    ('"', False): re.compile(r'(?:[^"]|"")*"'),
}


def _skip_quoted(sql, i, quote, backslash_escapes):
    """Return the index just past the quoted literal that starts at sql[i] (the quote)."""
    m = QUOTED_REST[quote, backslash_escapes].match(sql, i + 1)
    # A match that ends just before another quote took the first half of a doubled quote as the
    # end: the regex found it by backtracking because the literal is not terminated.
    if m is None or sql.startswith(quote, m.end()):
        raise ValueError('unterminated %s starting at line %d' % ('quoted identifier' if quote == '"' else 'string literal', line_of(sql, i)))
    return m.end()


def skip_block_comment(sql, i):
    depth = 0
    n = len(sql)
    j = i
    while j < n:
        if sql.startswith('/*', j):
            depth += 1
            j += 2
        elif sql.startswith('*/', j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError('unterminated /* comment starting at line %d' % line_of(sql, i))


def _is_routine_definition(words):
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE: may hold a BEGIN ATOMIC ... END body."""
    if words[0] != 'CREATE':
        return False
    w = words[1:4]
    if w[:1] in (['FUNCTION'], ['PROCEDURE']):
        return True
    return w[:2] == ['OR', 'REPLACE'] and w[2:3] in (['FUNCTION'], ['PROCEDURE'])


def copy_stream(statement):
    """'FROM STDIN' or 'TO STDOUT' when the statement is a COPY that streams through the client, or None."""
    if statement.words.first(1) != ['COPY']:
        return None
    w = statement.words.every()
    for direction, stream in (('FROM', 'STDIN'), ('TO', 'STDOUT')):
        if direction in w[:-1] and w[w.index(direction) + 1] == stream:
            return '%s %s' % (direction, stream)
    return None


def standard_strings_switch(statement, transactional):
    """What a SET or RESET of standard_conforming_strings sets it to: True (on), False (off),
    'DEFAULT' (the session's own value), or None when the statement does not change it."""
    command = statement.words.first(1)[0]
    if command not in ('SET', 'RESET'):
        return None
    text = COMMENT_RE.sub(' ', statement.text)
    if command == 'RESET':
        return 'DEFAULT' if STANDARD_STRINGS_RESET_RE.match(text) else None
    m = STANDARD_STRINGS_SET_RE.match(text)
    if not m or ((m.group(1) or '').upper() == 'LOCAL' and not transactional):
        return None
    value = m.group(2).lower()
    if value == 'default':
        return 'DEFAULT'
    if value and (value == 'on' or value == '1' or 'true'.startswith(value) or 'yes'.startswith(value)):
        return True
    if value and (value in ('of', 'off', '0') or 'false'.startswith(value) or 'no'.startswith(value)):
        return False
    return None  # the server refuses the value: the run stops there


def split_statements(sql, standard_strings=True, transactional=True):
    """Split SQL text into statements the way psql does.

    Knows single-quoted strings (E'' with backslash escapes), quoted identifiers, dollar
    quoting, -- and nested /* */ comments, semicolons inside parentheses, and SQL-standard
    routine bodies (BEGIN ATOMIC ... END). Returns a list of Statement; raises ValueError for
    unterminated literals and psql meta-commands.

    standard_strings is the session's standard_conforming_strings: off, a backslash escapes in
    every '' literal, as psql and the server then read it. The file's own SET (or RESET)
    standard_conforming_strings changes it for the statements after it, as psql follows the
    server; SET LOCAL only in a transactional file (in a no-transaction file it has no effect).
    """
    statements = []
    std = standard_strings
    n = len(sql)
    i = 0
    start = None  # offset of the first token of the current statement
    words = []  # top-level keywords/identifiers of the current statement
    routine = False  # CREATE [OR REPLACE] FUNCTION|PROCEDURE
    paren_depth = begin_depth = 0
    line, line_pos = 1, 0  # line number at offset line_pos, advanced incrementally
    all_words = False  # the statement starts with a word of EVERY_WORD_OF
    prev_word, prev_word_end = None, -1

    def kept_words():
        # Past LEADING_WORDS, SKIP_RE steps over words unless the statement needs every one.
        return Words(tuple(words), all_words or routine or len(words) < LEADING_WORDS)

    def meta_command(at):
        return ValueError('psql meta-command at line %d (%s): only SQL is supported' % (line_of(sql, at), sql[at:].split(None, 1)[0][:20]))

    while i < n:
        if start is not None and (paren_depth or (len(words) >= LEADING_WORDS and not routine and not all_words)):
            # The leading keywords are known: jump to the next character that matters.
            skipped = SKIP_RE.match(sql, i)
            if skipped is not None:
                i = skipped.end()
                if i >= n:
                    break
        m = TOKEN_RE.match(sql, i)
        kind = m.lastindex
        i = m.start(kind)
        end = m.end()
        if kind == WORD:  # the most frequent: checked first
            if start is None:
                start = i
            token = m.group(kind)
            prev_word, prev_word_end = token, end
            if paren_depth == 0:
                upper = token.upper()
                words.append(upper)
                if len(words) == 1:
                    all_words = upper in EVERY_WORD_OF
                elif len(words) in (2, 4):
                    routine = _is_routine_definition(words)
                if routine:
                    if upper == 'BEGIN' or (upper == 'CASE' and begin_depth > 0):
                        begin_depth += 1
                    elif upper == 'END' and begin_depth > 0:
                        begin_depth -= 1
            i = end
            continue
        if kind == LINE_COMMENT:
            i = end
            continue
        if kind == BLOCK_COMMENT:
            i = skip_block_comment(sql, i)
            continue
        c = sql[i]
        if c in WHITESPACE:  # at the end of the text
            i = end
            continue
        if start is None:
            if c == ';':
                i = end
                continue
            start = i
        if kind == INERT:
            i = end
        elif c == ';':
            if paren_depth == 0 and begin_depth == 0:
                line += sql.count('\n', line_pos, start)
                line_pos = start
                statements.append(Statement(sql[start:i].strip(), line, kept_words(), not std))
                start, words, routine, all_words, paren_depth, begin_depth = None, [], False, False, 0, 0
                i = end
                switched = standard_strings_switch(statements[-1], transactional)
                if switched is not None:
                    # psql reads the rest of the line as before and the server as after: only a
                    # comment may follow on it, so that both read the file alike.
                    line_end = sql.find('\n', i)
                    rest = COMMENT_RE.sub('', sql[i : line_end if line_end >= 0 else n]).strip()
                    if rest and not rest.startswith('/*'):
                        raise ValueError(
                            'line %d: more SQL follows SET standard_conforming_strings on the same line, '
                            'which psql reads with the old setting and the server with the new one; '
                            'put it on a line of its own' % line
                        )
                    std = standard_strings if switched == 'DEFAULT' else switched
                if copy_stream(statements[-1]) == 'FROM STDIN':
                    # psql reads the rows that follow, up to a line \. (pg_dump's format): not SQL
                    data_end = COPY_DATA_END_RE.search(sql, i)
                    i = data_end.end() if data_end else n
            else:
                i = end
        elif c == "'":
            if prev_word_end == i and prev_word in ('E', 'e', 'B', 'b', 'X', 'x'):
                escapes = prev_word in ('E', 'e')  # bit strings never take backslash escapes
            elif i >= 2 and sql[i - 2 : i] in ('U&', 'u&') and (i < 3 or not re.match(IDENT_CONT, sql[i - 3])):
                escapes = False
            else:
                escapes = not std
            i = _skip_quoted(sql, i, "'", escapes)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif c == '$':
            tag = DOLLAR_TAG.match(sql, i)
            if tag is None:  # a positional parameter such as $1
                i = end
                continue
            close = sql.find(tag.group(), tag.end())
            if close < 0:
                raise ValueError('unterminated dollar-quoted string %s starting at line %d' % (tag.group(), line_of(sql, i)))
            i = close + len(tag.group())
        elif c == '\\':
            raise meta_command(i)
        elif c == '(':
            paren_depth += 1
            i = end
        elif c == ')':
            paren_depth = max(0, paren_depth - 1)
            i = end
        else:
            i = end
    if start is not None:
        text = sql[start:].strip()
        if text:
            statements.append(Statement(text, line + sql.count('\n', line_pos, start), kept_words(), not std))
    return statements
