# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ship the migration directory to the host, each content once (library/db_deploy_release.py).

On the controller: read the directory (refusing files over max_file_size before anything is
sent), name the release, and send the host the tree's shape with each file's SHA-256. The host
answers with the contents it lacks, and only those travel, in a second call. A release whose files
weigh INLINE_BYTES or less in all travels whole with the first call instead: less than the
module's own code, and cheaper than a second round trip. Either way the host stores a content only
when it lacks it, so a rerun, or the same files under a new release id, changes nothing there.

With state=absent, it removes the temporary directory a read-only call made (its path, as the
module returned it), with one shell command instead of a module.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import stat

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

PASSED = ('root', 'read_only', 'keep', 'owner', 'database', 'system_identifier', 'tool', 'marker', 'backup_dir', 'backup_check')
INLINE_BYTES = 64 * 1024
# What the module's read-only call names its temporary directory (tempfile.mkdtemp).
TEMPORARY = re.compile(r'/(?:[^/]+/)*db-deploy-check-[A-Za-z0-9_]+')


def release_name(release_id, sql_files):
    """The directory name of the release: release_id made safe, or a hash of the migration files.

    The hash is the one the role computed before this plugin (names, then contents without
    trailing whitespace), so directories shipped by earlier versions keep their names.
    """
    if release_id:
        return re.sub(r'^[.]', '_', re.sub(r'[^A-Za-z0-9._-]', '_', release_id))
    names = ','.join(os.path.basename(path) for path, _data in sql_files)
    texts = '\n'.join(to_text(data, errors='surrogateescape').rstrip() for _path, data in sql_files)
    return 'files-' + hashlib.sha256((names + '\n' + texts).encode('utf-8', 'surrogateescape')).hexdigest()[:12]


def read_tree(src, max_size):
    """(entries, contents by SHA-256, top-level *.sql as (path, bytes)) of the directory src."""
    entries, contents, sql_files, too_large, odd = [], {}, [], [], []
    for parent, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(parent, name)
            rel = os.path.relpath(full, src)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                # Shipped as a link: followed, a link out of the directory would arrive as a plain
                # file and run, where postgresql_migrate refuses it.
                entries.append({'path': rel, 'type': 'link', 'target': os.readlink(full)})
                if parent == src and name.endswith('.sql') and os.path.isfile(full):
                    with open(full, 'rb') as f:
                        sql_files.append((full, f.read(max_size + 1)))
            elif stat.S_ISDIR(st.st_mode):
                entries.append({'path': rel, 'type': 'dir'})
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > max_size:
                    too_large.append(rel)
                    continue
                with open(full, 'rb') as f:
                    data = f.read()
                sha = hashlib.sha256(data).hexdigest()
                contents[sha] = data
                entries.append({'path': rel, 'type': 'file', 'sha256': sha})
                if parent == src and name.endswith('.sql'):
                    sql_files.append((full, data))
            else:
                odd.append(rel)
        # Links to directories are entries, never descended into.
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(parent, d))]
    if too_large:
        raise AnsibleActionFail(
            'migration files larger than db_deploy_max_file_size (%d bytes): %s. Nothing was shipped and no '
            'migration was applied; split the file, or raise db_deploy_max_file_size if it is meant to be that large.'
            % (max_size, ', '.join(sorted(too_large)))
        )
    if odd:
        raise AnsibleActionFail(
            '%s: not a file, directory or link (%s). Nothing was shipped and no migration was '
            'applied; remove it from the migrations directory.' % (src, ', '.join(odd))
        )
    return entries, contents, sorted(sql_files)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('src', 'release_id', 'max_file_size', 'state', 'path') + PASSED)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        if args.get('state') == 'absent':
            return self.remove_temporary(args.get('path') or '', result)
        src = self._loader.path_dwim(args['src'])
        max_size = int(args.get('max_file_size', 52428800))
        if not os.path.isdir(src):
            raise AnsibleActionFail(
                '%s is not a directory on the controller: set db_deploy_migrations_src to the directory of the migration files. Nothing was shipped.' % src
            )
        entries, contents, sql_files = read_tree(src, max_size)
        module_args = {k: args[k] for k in PASSED if k in args}
        module_args.update(release=release_name(args.get('release_id') or '', sql_files), entries=entries)

        if sum(len(data) for data in contents.values()) <= INLINE_BYTES:
            module_args['contents'] = {sha: base64.b64encode(data).decode() for sha, data in contents.items()}
        answer = self._execute_module('db_deploy_release', module_args=module_args, task_vars=task_vars)
        if not answer.get('failed') and answer.get('missing'):
            module_args['contents'] = {sha: base64.b64encode(contents[sha]).decode() for sha in answer['missing']}
            answer = self._execute_module('db_deploy_release', module_args=module_args, task_vars=task_vars)
            if not answer.get('failed') and answer.get('missing'):
                answer.update(failed=True, msg='the host still lacks %d file contents after they were sent; nothing was applied' % len(answer['missing']))
        # The module's arguments hold every file's content: not worth echoing back.
        answer.pop('invocation', None)
        result.update(answer)
        result['release'] = module_args['release']
        return result

    def remove_temporary(self, path, result):
        if not TEMPORARY.fullmatch(path) or '/../' in path + '/':
            raise AnsibleActionFail('%r is not a temporary directory of a read-only db_deploy_release call; nothing was removed' % path)
        done = self._low_level_execute_command('rm -rf -- %s' % shlex.quote(path), sudoable=True)
        if done['rc'] != 0:
            raise AnsibleActionFail('could not remove %s: %s' % (path, (done.get('stderr') or '').strip()))
        result.update(changed=False, path=path)
        return result
