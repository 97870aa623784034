# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning: what to do with each migration, from the files and the history; and the plan as the task returns it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import VERSION_RULE, version_number
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.redaction import redact_file


STATUSES = ('applied', 'already_applied', 'would_apply', 'failed', 'skipped', 'pending')


def bad_versions(label, values):
    """The problem with an option's list of versions, naming the values that are not versions."""
    bad = [v for v in values or () if version_number(v) is None]
    if not bad:
        return []
    return ['%s holds %s, not %s: %s' % (label, ', '.join(repr(v) for v in bad), 'a version number' if len(bad) == 1 else 'version numbers', VERSION_RULE)]


def new_entry(mig):
    return dict(
        version=mig.version,
        name=mig.name,
        file=mig.filename,
        checksum=mig.checksum,
        transactional=mig.transactional,
        status='pending',
        changed=False,
        duration_ms=None,
        applied_at=None,
        adopted=False,
        checksum_accepted=False,
        drift=False,
        message='',
    )


def plan_migrations(migrations, history, incomplete, target_version=None, allow_out_of_order=False, accept_checksums=(), retry_incomplete=()):
    """Decide what to do with each migration; never touches the database.

    history: {number: {'version', 'name', 'checksum', 'applied_at'}} of recorded versions.
    incomplete: {number: {'version', 'started_at', 'error', ...}} of interrupted no-transaction runs.
    Returns dict(entries, to_apply, adopt, accept, missing, problems, warnings).
    """
    problems, warnings = [], []
    accept = set(version_number(v) for v in accept_checksums)
    retry = set(version_number(v) for v in retry_incomplete)
    numbers = set(m.number for m in migrations)
    target = None
    if target_version not in (None, ''):
        target = version_number(target_version)
        if target is None or target not in numbers:
            problems.append(
                'target_version %s does not match any migration file (versions: %s)' % (target_version, ', '.join(m.version for m in migrations) or 'none')
            )
    for label, values in (('accept_checksums', accept_checksums), ('retry_incomplete', retry_incomplete)):
        problems.extend(bad_versions(label, values))
    highest_recorded = max(history) if history else None

    entries, to_apply, adopt, accepted = [], [], [], []
    for mig in migrations:
        entry = new_entry(mig)
        entries.append(entry)
        # Before the history: a no-transaction file may have written its own row before it stopped.
        if mig.number in incomplete and mig.number not in retry:
            info = incomplete[mig.number]
            entry['message'] = 'left incomplete by an earlier run (started %s%s)' % (
                info.get('started_at'),
                ', error: %s' % info['error'] if info.get('error') else '',
            )
            problems.append(
                '%s is a no-transaction migration that an earlier run left incomplete (started %s by %s%s). '
                'Some of its statements may have run. Inspect the database (for an interrupted CREATE INDEX '
                'CONCURRENTLY: SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; drop the '
                'invalid index), then rerun with retry_incomplete: ["%s"]'
                % (
                    mig.filename,
                    info.get('started_at'),
                    info.get('started_by') or 'unknown',
                    ', error: %s' % info['error'] if info.get('error') else ', the run was interrupted',
                    mig.version,
                )
            )
            continue
        row = None if mig.number in incomplete else history.get(mig.number)  # retried: runs again
        if row is not None:
            entry['status'] = 'already_applied'
            entry['applied_at'] = row.get('applied_at')
            recorded = row.get('checksum')
            if not recorded:
                entry['adopted'] = True
                adopt.append(mig)
            elif recorded != mig.checksum:
                if mig.number in accept:
                    entry['checksum_accepted'] = True
                    accepted.append(mig)
                else:
                    entry['drift'] = True
                    entry['message'] = 'file changed since it was applied (recorded checksum %s)' % recorded[:12]
            continue
        if target is not None and mig.number > target:
            entry['status'] = 'skipped'
            entry['message'] = 'beyond target_version %s' % target_version
            continue
        if highest_recorded is not None and mig.number < highest_recorded and not allow_out_of_order:
            entry['message'] = 'out of order: lower than the highest applied version'
            problems.append(
                '%s is pending but version %s is already applied: applying it out of order could '
                'run it against a newer schema than it was written for. Renumber it above %s, or '
                'set allow_out_of_order: true if it is safe' % (mig.filename, history[highest_recorded]['version'], history[highest_recorded]['version'])
            )
            continue
        to_apply.append(mig)

    drifted = [e for e in entries if e['drift']]
    if drifted:
        problems.append(
            'applied migrations changed on disk: %s. An applied migration is never run again: '
            'restore the file as it was applied and put the change in a new migration, or, if '
            'the edit is deliberate and harmless, rerun with accept_checksums: [%s]'
            % (', '.join(e['file'] for e in drifted), ', '.join('"%s"' % e['version'] for e in drifted))
        )
    for label, wanted, used in (('accept_checksums', accept, set(m.number for m in accepted)), ('retry_incomplete', retry, set(n for n in incomplete))):
        unused = sorted(n for n in wanted if n is not None and n not in used)
        if unused:
            warnings.append(
                '%s lists %s, which %s' % (label, ', '.join(str(n) for n in unused), 'did not change' if label == 'accept_checksums' else 'is not incomplete')
            )
    if target is not None and highest_recorded is not None and target < highest_recorded:
        warnings.append(
            'target_version %s is below the highest applied version %s; migrations are never '
            'rolled back' % (target_version, history[highest_recorded]['version'])
        )

    missing = [history[n]['version'] for n in sorted(history) if n not in numbers]
    if missing:
        warnings.append('versions recorded in the history table have no file in the migrations directory: %s' % ', '.join(missing))
    return dict(entries=entries, to_apply=to_apply, adopt=adopt, accept=accepted, missing=missing, problems=problems, warnings=warnings)


def summarize(entries):
    counts = dict((s, 0) for s in STATUSES)
    for e in entries:
        counts[e['status']] = counts.get(e['status'], 0) + 1
    return counts


def build_diff(entries, migrations_by_file, check_mode):
    """Ansible diff entries showing the SQL of every applied (or would-be applied) migration."""
    diffs = []
    for e in entries:
        if e['status'] in ('applied', 'would_apply'):
            diffs.append(
                dict(
                    before_header='%s (not applied)' % e['file'],
                    after_header='%s (%s)' % (e['file'], 'would apply' if check_mode else 'applied'),
                    before='',
                    after=redact_file(migrations_by_file[e['file']]),
                )
            )
    return diffs


def result_entry(entry):
    """The documented, compact form of a plan entry: optional keys only when they say something.

    A run over a thousand migrations returns a thousand of these; Ansible's handling of the
    result grows with its size.
    """
    out = dict(version=entry['version'], name=entry['name'], status=entry['status'], changed=entry['changed'])
    if entry['duration_ms'] is not None:
        out['duration_ms'] = entry['duration_ms']
    if entry['applied_at']:
        out['applied_at'] = entry['applied_at']
    for flag in ('adopted', 'checksum_accepted', 'drift'):
        if entry[flag]:
            out[flag] = True
    if not entry['transactional']:
        out['no_transaction'] = True
    if entry['message']:
        out['message'] = entry['message']
    return out


def finish_result(result, migrations, diff, check_mode):
    """Turn the entries into the documented return values."""
    entries = result.pop('entries', [])
    result['migrations'] = [result_entry(e) for e in entries]
    result['summary'] = summarize(entries)
    result['applied'] = [e['version'] for e in entries if e['status'] in ('applied', 'would_apply')]
    result['pending'] = [e['version'] for e in entries if e['status'] in ('pending', 'would_apply', 'failed', 'skipped')]
    done = [e['version'] for e in entries if e['status'] in ('applied', 'already_applied')]
    if done:
        result['current_version'] = max(done, key=int)
    if diff:
        result['diff'] = build_diff(entries, dict((m.filename, m) for m in migrations), check_mode)
    return result
