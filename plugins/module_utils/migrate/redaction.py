# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction: SQL and server messages shown to a person, with the value that sets a password hidden."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import DOLLAR_TAG, IDENT, WHITESPACE, skip_block_comment


REDACTED = '********'
# What is hidden of SQL shown to a person (--diff, a failed statement, the server's messages): the
# value that sets a password, nothing else. The value is the literal after a word ending in
# "password" (a role's PASSWORD, a user mapping's password or sslpassword option, UPDATE ... SET
# password = '...'), the value of password= in a connection string inside a literal, and the
# password of a URI; comments are shown whole (one that holds a URI loses its password). The
# literals of SQL that is itself in a literal (EXECUTE '...', a DO body) are read the same way.
# Where the value is not written in the statement (PASSWORD %L, PASSWORD ' || ...), the rest of
# the statement and the literals of the code around it are hidden, as the value may be any of them.
URI_SECRET_RE = re.compile(r'''(://[^/:@\s'"]{0,256}:)[^@\s'"]{1,256}@''')
# In a literal's value, where a quote is no delimiter any more: 'postgresql://u:it''s@h'.
URI_SECRET_IN_VALUE_RE = re.compile(r'''(://[^/:@\s]{0,256}:)[^@\s]{1,256}@''')
SECRET_KEY_RE = re.compile(r'[A-Za-z0-9_]*password', re.IGNORECASE)
CONNINFO_SECRET_RE = re.compile(
    r'''(?<![\w$.])[A-Za-z0-9_]*password[ \t\n\r\f\v]*=[ \t\n\r\f\v]*'''
    r'''((?:'(?:[^'\\]|\\.)*'?)|[^ \t\n\r\f\v]*)''',
    re.IGNORECASE,
)
# One token for showing SQL: a -- comment, the start of a /* comment, a word, a $n parameter, a
# number, or one other character. Never fails, so unterminated or mangled text (an error context)
# is still read to its end.
SHOW_TOKEN_RE = re.compile(r'[ \t\n\r\f\v]*(?:(--[^\n]*)|(/\*)|(' + IDENT + r')|(\$[0-9]+)|([0-9][0-9.]*)|(.))', re.DOTALL)
SHOW_LITERAL_END = {
    'std': re.compile(r"(?:[^']|'')*'"),
    'esc': re.compile(r"(?:[^'\\]|''|\\.)*'", re.DOTALL),
    'ident': re.compile(r'(?:[^"]|"")*"'),
}
MAX_SECRET_DEPTH = 4  # SQL in a literal in a literal...: deeper than that, the whole literal is hidden


def quotes_hidden_sql(fragment, hidden):
    """Whether a fragment a message quotes is a token (or run of tokens) of the hidden SQL: not
    merely inside a longer word, so the table t of `(password text)` is still named."""
    pattern = re.compile(
        ('(?<![\\w$])' if re.match(r'[\w$]', fragment) else '') + re.escape(fragment) + ('(?![\\w$])' if re.search(r'[\w$]\Z', fragment) else '')
    )
    return any(pattern.search(part) for part in hidden)


def redact_quoted(text, hidden):
    """A server message, detail or hint with each "quoted" fragment that comes from the hidden
    parts of the SQL hidden: a syntax error quotes the token it stopped at, which may be the
    password. The longest fragment wins, so a token holding a quote is hidden whole. A hidden part
    found anywhere else in the text is hidden too, unless it is too short to tell (1-3 characters)."""
    quotes = [i for i, c in enumerate(text) if c == '"']
    if len(quotes) > 8:  # no message of the server quotes that much: hide from the first quote on
        return text[: quotes[0]] + '"%s"' % REDACTED
    out, pos, k = [], 0, 0
    while k < len(quotes) - 1:
        start = quotes[k]
        for m in range(len(quotes) - 1, k, -1):
            end = quotes[m]
            if end > start + 1 and quotes_hidden_sql(text[start + 1 : end], hidden):
                out += [text[pos:start], '"%s"' % REDACTED]
                pos, k = end + 1, m + 1
                break
        else:
            k += 1
    text = ''.join(out) + text[pos:]
    for part in sorted(hidden, key=len, reverse=True):  # quoted or not, with more around it
        if len(part) >= 4:
            text = text.replace(part, REDACTED)
    return text


def _show_tokens(text, escapes):
    """(kind, start, end, body_start, body_end, mode) of each token of text, comments included.

    kind: comment, word, param, number, other, string, dollar or ident; a string's mode is esc when
    a backslash escapes in it (E'', or every '' when escapes: standard_conforming_strings off).
    """
    tokens, i, n = [], 0, len(text)
    while i < n:
        m = SHOW_TOKEN_RE.match(text, i)
        kind = m.lastindex
        start = m.start(kind)
        if kind == 1:
            tokens.append(('comment', start, m.end(), start, m.end(), None))
            i = m.end()
            continue
        if kind == 2:
            try:
                end = skip_block_comment(text, start)
            except ValueError:
                end = n
            tokens.append(('comment', start, end, start, end, None))
            i = end
            continue
        if kind == 3:
            word, end = m.group(3), m.end()
            prefix = word.upper()
            if end < n and text[end] == "'" and prefix in ('E', 'B', 'X', 'N'):
                # B'' and X'' never take backslash escapes; N'' does as '' does
                mode, quote_at = 'esc' if prefix == 'E' or (escapes and prefix == 'N') else 'std', end
            elif prefix == 'U' and text.startswith("&'", end):
                mode, quote_at = 'std', end + 1
            elif prefix == 'U' and text.startswith('&"', end):
                mode, quote_at = 'ident', end + 1
            else:
                tokens.append(('word', start, end, start, end, None))
                i = end
                continue
        elif kind in (4, 5):
            tokens.append(('param' if kind == 4 else 'number', start, m.end(), start, m.end(), None))
            i = m.end()
            continue
        else:
            c = text[start]
            quote_at = start
            if c == "'":
                mode = 'esc' if escapes else 'std'
            elif c == '"':
                mode = 'ident'
            elif c == '$' and DOLLAR_TAG.match(text, start):
                tag = DOLLAR_TAG.match(text, start).group()
                close = text.find(tag, start + len(tag))
                body_end = close if close >= 0 else n
                end = close + len(tag) if close >= 0 else n
                tokens.append(('dollar', start, end, start + len(tag), body_end, None))
                i = end
                continue
            else:
                if c not in WHITESPACE:  # whitespace only at the very end of the text
                    tokens.append(('other', start, m.end(), start, m.end(), None))
                i = m.end()
                continue
        body = SHOW_LITERAL_END[mode].match(text, quote_at + 1)
        end = body.end() if body else n
        tokens.append(('ident' if mode == 'ident' else 'string', start, end, quote_at + 1, end - 1 if body else n, mode))
        i = end
    return tokens


def _decoded(text, token):
    """A literal's value and, for each of its characters, where it starts in text."""
    i, end, mode = token[3:]
    if mode is None:  # dollar quoting: the body as written
        return text[i:end], list(range(i, end))
    quote = '"' if mode == 'ident' else "'"
    out, at = [], []
    while i < end:
        c = text[i]
        step = 2 if (c == quote and text.startswith(quote, i + 1)) or (c == '\\' and mode == 'esc') else 1
        out.append(text[i + step - 1] if i + step <= end else c)
        at.append(i)
        i += step
    return ''.join(out), at


def _in_role_statement(words):
    """CREATE/ALTER ROLE|USER|GROUP or an OPTIONS list among the words so far: there a password is
    whatever follows the word (a value left unquoted by mistake, which the server's error quotes)."""
    return 'OPTIONS' in words or any(a in ('CREATE', 'ALTER') and b in ('ROLE', 'USER', 'GROUP') for a, b in zip(words, words[1:]))


def _secrets_in(text, escapes, depth):
    """(spans, unwritten): spans of text that hold a secret; unwritten is where a password word
    is followed by no value (it is built elsewhere), or None."""
    tokens = _show_tokens(text, escapes)
    spans, unwritten, words = [], None, []
    n = len(tokens)

    def after(j):
        while j < n and tokens[j][0] == 'comment':
            j += 1
        return j

    i = 0
    while i < n:
        kind, start, end = tokens[i][:3]
        if kind == 'other' and text[start] == ';':
            words = []
        elif kind in ('word', 'ident'):
            name = text[start:end] if kind == 'word' else _decoded(text, tokens[i])[0]
            words.append(name.upper())
            if SECRET_KEY_RE.fullmatch(name):
                j = after(i + 1)
                if j < n and tokens[j][0] == 'other' and text[tokens[j][1]] == '=':
                    j = after(j + 1)
                value = tokens[j] if j < n else None
                if value is None:
                    if depth:
                        unwritten = end if unwritten is None else min(unwritten, end)
                elif value[0] in ('string', 'dollar'):
                    while j < n and tokens[j][0] in ('string', 'dollar'):  # continued literals
                        spans.append(tokens[j][1:3])
                        i, j = j, after(j + 1)
                elif value[0] == 'ident' or (value[0] in ('word', 'number') and _in_role_statement(words) and text[value[1] : value[2]].upper() != 'NULL'):
                    spans.append(value[1:3])
                    i = j
                elif value[0] == 'param' or (value[0] == 'other' and text[value[1]] in '%?'):
                    unwritten = end if unwritten is None else min(unwritten, end)
        elif kind in ('string', 'dollar'):
            inner, inner_unwritten = _secrets_in_literal(text, tokens[i], escapes, depth)
            spans.extend(inner)
            if inner_unwritten is not None:
                unwritten = inner_unwritten if unwritten is None else min(unwritten, inner_unwritten)
        i += 1
    if unwritten is not None and depth:
        spans.extend(t[1:3] for t in tokens if t[0] in ('string', 'dollar'))
    return spans, unwritten


def _secrets_in_literal(text, token, escapes, depth):
    """The spans of text that a literal's value holds secret: as SQL, as a connection string, a URI."""
    raw = text[token[3] : token[4]].lower()
    if 'password' not in raw.replace('\\', '') and '://' not in raw:
        return [], None
    value, at = _decoded(text, token)
    if depth >= MAX_SECRET_DEPTH:
        return [token[1:3]], None
    inner, unwritten = _secrets_in(value, escapes, depth + 1)
    for m in CONNINFO_SECRET_RE.finditer(value):
        if m.group(1):
            inner.append(m.span(1))
        elif m.end() == len(value):
            unwritten = m.end() if unwritten is None else min(unwritten, m.end())
    inner.extend((m.start() + len(m.group(1)), m.end() - 1) for m in URI_SECRET_IN_VALUE_RE.finditer(value))

    def raw_at(k):
        return at[k] if k < len(at) else token[4]

    spans = [(raw_at(a), raw_at(b)) for a, b in inner if b > a]
    return spans, None if unwritten is None else raw_at(unwritten)


def secret_spans(text, escapes=False):
    """Sorted, merged (start, end) spans of text that hold a secret (see the comment above URI_SECRET_RE).

    escapes: a backslash escapes in '' literals (standard_conforming_strings off).
    """
    spans = [(m.start() + len(m.group(1)), m.end() - 1) for m in URI_SECRET_RE.finditer(text)]
    if 'password' in text.lower().replace('\\', ''):
        found, unwritten = _secrets_in(text, escapes, 0)
        spans.extend(found)
        if unwritten is not None:  # text is one statement: the rest of it
            spans.append((unwritten, len(text)))
    return _merged(spans)


def _merged(spans):
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return merged


def _hide(text, spans):
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], REDACTED]
        pos = end
    return ''.join(out) + text[pos:]


def redact_secrets(text, escapes=False):
    """Text of SQL to show: each secret value (secret_spans) is ********, the rest as written.
    The SQL that runs is untouched."""
    return _hide(text, secret_spans(text, escapes))


def secret_parts(sql):
    """The secret values of sql, read with and without backslash escapes: a server message may
    quote any of them, and which reading the server made is not known here."""
    return sorted(set(sql[a:b] for escapes in (False, True) for a, b in secret_spans(sql, escapes)))


def redact_context(context):
    """A server error's CONTEXT lines, one line: each quotes SQL between its first and last double
    quote (SQL statement "ALTER ROLE ... PASSWORD '...'"), whose secrets are hidden read either way."""
    lines = []
    for line in context.splitlines():
        line = line.strip()
        first, last = line.find('"'), line.rfind('"')
        if 0 <= first < last:
            quoted = line[first + 1 : last]
            hidden = _merged(secret_spans(quoted, False) + secret_spans(quoted, True))
            line = line[: first + 1] + _hide(quoted, hidden) + line[last:]
        if line:
            lines.append(redact_secrets(line))
    return '; '.join(lines)


def redact_file(mig):
    """A split migration's SQL to show (--diff): as written, each statement's secret values hidden.
    Between statements are only comments, shown whole but for a URI's password."""
    sql, out, pos = mig.sql, [], 0
    for st in mig.statements or []:
        at = sql.find(st.text, pos)  # the statement's text is a slice of the file's
        if at < 0:
            break
        out += [redact_secrets(sql[pos:at]), redact_secrets(st.text, st.escapes)]
        pos = at + len(st.text)
    out.append(redact_secrets(sql[pos:]))
    return ''.join(out)
