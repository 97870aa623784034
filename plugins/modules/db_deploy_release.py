#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: db_deploy_release
short_description: Put one release's migration files on the host, each content shipped once
description:
  - Used through the action plugin of the same name, which reads the migration directory on the
    controller and calls this module with the tree's shape and the SHA-256 of each file, and again
    with the contents the host does not have yet. A content already on the host costs nothing (a
    rerun, or the same files under a new release id, sends no file).
  - Contents live once in C(root)/.store, named by their SHA-256 and checked against it before use;
    a release directory C(root)/RELEASE holds hard links to them and a manifest naming the tool,
    the database and the cluster. A new release directory is built beside its final name and
    renamed into place, so a release directory is always whole and always has its manifest.
  - Rotation deletes this database's release directories beyond the newest C(keep), recognised by
    their manifest only; then store contents no release links to. Anything else in C(root) is left
    alone and named in C(foreign).
  - With C(read_only), nothing in C(root) changes; the files are taken from the existing release
    directory when it holds exactly them, else written to a new temporary directory (C(temporary))
    that the caller removes.
  - Runs under an exclusive lock on C(root)/.store/.lock, so that two runs for the same database
    never rotate or collect what the other is about to use.
options:
  root:
    description: This database's release folder, the release root's C(<name>-<hash>).
    type: path
    required: true
  release:
    description: The release's directory name.
    type: str
  entries:
    description: The migration directory's tree, parents before children (from the action plugin).
    type: list
    elements: dict
  src:
    description: The action plugin's; given to the module, it means the action plugin was not loaded.
    type: str
  release_id:
    description: The action plugin's.
    type: str
  max_file_size:
    description: The action plugin's.
    type: int
  contents:
    description: SHA-256 to base64 content of the files the host lacks.
    type: dict
    default: {}
  read_only:
    description: Leave root as it is.
    type: bool
    default: false
  keep:
    description: Release directories of this database kept, this one included.
    type: int
    default: 5
  owner:
    description: OS user to own what is created; empty for the user the module runs as.
    type: str
    default: ''
  database:
    description: The database whose release this is (manifest).
    type: str
    required: true
  system_identifier:
    description: The cluster's system_identifier (manifest).
    type: str
    required: true
  tool:
    description: The tool named in manifests.
    type: str
    default: db_deploy
  marker:
    description: The manifest's file name in each release directory.
    type: str
    default: .db-deploy-release.json
  backup_dir:
    description: The directory the deploy's backups go to, for O(backup_check).
    type: path
    default: ''
  backup_check:
    description:
      - >-
        Also say whether a backup to O(backup_dir) could be taken (RV(backup_check)), as
        O(st44.db_deploy.db_deploy_backups#module:state=check) would, and unless O(read_only), make a missing
        O(backup_dir) (0700, owned by O(owner)) when it could: a deploy asks it here so that it
        spends no call of its own on either. Keys C(database), C(pg_bin_dir), C(server_major),
        C(server_version), C(db_size), C(space_factor), C(host). Empty for no check.
    type: dict
    default: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check mode without modifying the target.
    support: partial
    details: O(read_only), not check mode, keeps C(root) as it is; the role passes it in check mode and in the status play.
  diff_mode:
    description: Would return what changed when in diff mode.
    support: none
author: st44 platform team (!UNKNOWN)
'''

EXAMPLES = r'''
- name: Ship the migration files of release r42, keeping the newest 5 releases of st44
  st44.db_deploy.db_deploy_release:
    src: migrations/
    release_id: r42
    max_file_size: 10485760
    root: /var/lib/st44-db/releases/st44-0badcafe
    keep: 5
    owner: postgres
    database: st44
    system_identifier: "7301234567890123456"
  register: shipped

- name: Put the same files on the host for a dry run, changing nothing in root
  st44.db_deploy.db_deploy_release:
    src: migrations/
    release_id: r42
    max_file_size: 10485760
    root: /var/lib/st44-db/releases/st44-0badcafe
    read_only: true
    database: st44
    system_identifier: "7301234567890123456"
  register: dry_run
'''

RETURN = r'''
path:
  description: Where the release's files are on the host.
  type: str
  returned: success
temporary:
  description: Whether path is a temporary directory the caller must remove.
  type: bool
  returned: success
missing:
  description: SHA-256 of contents the host lacks; nothing was changed when it is not empty.
  type: list
  returned: always
files:
  description: Regular files in the release.
  type: int
  returned: success
new:
  description: Contents stored on the host by this call.
  type: int
  returned: success
created:
  description: Whether the release directory was made by this call.
  type: bool
  returned: success
deleted:
  description: Release directories removed by rotation.
  type: list
  returned: success
foreign:
  description: Entries of root not made by this tool for this database, left alone.
  type: list
  returned: success
notice:
  description: RV(deleted) and RV(foreign) in a sentence for people; empty when both are.
  type: str
  returned: success
backup_check:
  description:
    - With O(backup_check), why a backup could not be taken (C(problem), null when it could), C(pg_bin),
      C(version), and whether this call made O(backup_dir) (C(created)).
  type: dict
  returned: when backup_check is given
'''

import base64
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import tempfile
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.st44.db_deploy.plugins.module_utils import db_deploy_backup_check as backup_check
from ansible_collections.st44.db_deploy.plugins.module_utils.db_deploy_files import sha256_of

STORE = '.store'
# A build directory of a run killed before its rename: older than this, no live run owns it.
BUILD_PREFIX = '.build-'
STALE_BUILD_SECONDS = 3600


class Refusal(Exception):
    pass


class Owner:
    """chown to the database OS user what this run creates (when running as another user)."""

    def __init__(self, name):
        self.ids = None
        if name:
            entry = pwd.getpwnam(name)
            if (entry.pw_uid, entry.pw_gid) != (os.geteuid(), os.getegid()):
                self.ids = (entry.pw_uid, entry.pw_gid)

    def own(self, path, follow=True):
        if self.ids:
            os.chown(path, *self.ids, follow_symlinks=follow)

    def make_dir(self, path, parents=False):
        """Make path (0750, owned) unless a directory is there. Deploys of several databases of one
        host ship at once, and the store's lock lives inside these directories: another run may
        make one between a check and the mkdir, so its existing is not an error."""
        try:
            (os.makedirs if parents else os.mkdir)(path, 0o750)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            return
        self.own(path)


def read_manifest(directory, marker):
    try:
        with open(os.path.join(directory, marker), 'rb') as f:
            raw = f.read(65536)
        manifest = json.loads(raw)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_own(directory, name, p):
    m = read_manifest(directory, p['marker'])
    return (
        m is not None
        and m.get('tool') == p['tool']
        and m.get('database') == p['database']
        and str(m.get('system_identifier')) == str(p['system_identifier'])
        and m.get('release') == name
    )


def tree_matches(directory, entries, marker):
    """Whether directory holds exactly entries (content by SHA-256), nothing more but the manifest."""
    wanted = {e['path']: e for e in entries}
    seen = set()
    for parent, dirs, files in os.walk(directory):
        for name in dirs + files:
            full = os.path.join(parent, name)
            rel = os.path.relpath(full, directory)
            if rel == marker:
                continue
            e = wanted.get(rel)
            if e is None or not entry_matches(full, e):
                return False
            seen.add(rel)
        # os.walk does not descend into links to directories: a link is an entry, checked above.
    return seen == set(wanted)


def entry_matches(full, e):
    if e['type'] == 'link':
        return os.path.islink(full) and os.readlink(full) == e['target']
    if os.path.islink(full):
        return False
    if e['type'] == 'dir':
        return os.path.isdir(full)
    return os.path.isfile(full) and sha256_of(full) == e['sha256']


class Release:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.owner = Owner(self.p['owner'])
        self.root = self.p['root']
        self.store = os.path.join(self.root, STORE)
        self.new = 0
        # Store contents whose hash was checked in this call: each is read once, not again
        # when it is linked (a real run holds the store's lock; a read-only one checks the
        # bytes it copies again).
        self.checked = set()

    # --- the store -----------------------------------------------------------------------------

    def verified(self, sha):
        """Whether the store holds sha's content (a damaged copy counts as missing; put replaces it)."""
        if sha in self.checked:
            return True
        try:
            good = sha256_of(os.path.join(self.store, sha)) == sha
        except OSError:
            return False
        if good:
            self.checked.add(sha)
        return good

    def missing(self, entries):
        """SHA-256 of the contents neither sent nor in the store."""
        contents = self.p['contents']
        return sorted({e['sha256'] for e in entries if e['type'] == 'file' and e['sha256'] not in contents and not self.verified(e['sha256'])})

    def content(self, sha):
        raw = base64.b64decode(self.p['contents'][sha])
        if hashlib.sha256(raw).hexdigest() != sha:
            raise Refusal('the content sent for %s does not match its SHA-256; nothing was changed' % sha)
        return raw

    def put(self, sha):
        """The store's copy of sha, written from the sent content when it is not there."""
        path = os.path.join(self.store, sha)
        if self.verified(sha):
            return path
        fd, tmp = tempfile.mkstemp(dir=self.store, prefix='.' + sha[:12] + '-')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(self.content(sha))
            os.chmod(tmp, 0o640)
            self.owner.own(tmp)
            os.rename(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.new += 1
        return path

    # --- building a directory ------------------------------------------------------------------

    def place(self, directory, e, link_from_store):
        full = os.path.join(directory, e['path'])
        if e['type'] == 'dir':
            os.mkdir(full, 0o750)
            self.owner.own(full)
        elif e['type'] == 'link':
            os.symlink(e['target'], full)
            self.owner.own(full, follow=False)
        elif link_from_store:
            os.link(self.put(e['sha256']), full)
        else:
            source = os.path.join(self.store, e['sha256'])
            if e['sha256'] in self.p['contents']:
                data = self.content(e['sha256'])
            else:
                with open(source, 'rb') as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != e['sha256']:
                    raise Refusal('%s on the host does not match its SHA-256 (changed by hand?); remove it and run again' % source)
            with open(full, 'wb') as f:
                f.write(data)
            os.chmod(full, 0o640)
            self.owner.own(full)

    def build(self, directory, entries, link_from_store):
        for e in entries:
            self.place(directory, e, link_from_store)

    def write_manifest(self, directory):
        manifest = {
            'tool': self.p['tool'],
            'database': self.p['database'],
            'system_identifier': self.p['system_identifier'],
            'release': self.p['release'],
            'created': datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
        }
        path = os.path.join(directory, self.p['marker'])
        with open(path, 'w') as f:
            f.write(json.dumps(manifest, indent=4, sort_keys=True) + '\n')
        os.chmod(path, 0o640)
        self.owner.own(path)

    def create(self, final, entries):
        """Build the release beside its final name and rename it there: never half a release."""
        build = tempfile.mkdtemp(dir=self.root, prefix=BUILD_PREFIX)
        try:
            os.chmod(build, 0o750)
            self.owner.own(build)
            self.write_manifest(build)
            self.build(build, entries, link_from_store=True)
            os.rename(build, final)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise

    def reconcile(self, final, entries):
        """Make an existing release directory of this tool hold exactly entries."""
        wanted = {e['path']: e for e in entries}
        for parent, dirs, files in os.walk(final, topdown=False):
            for name in files + dirs:
                full = os.path.join(parent, name)
                rel = os.path.relpath(full, final)
                if rel == self.p['marker']:
                    continue
                e = wanted.get(rel)
                if e is not None and entry_matches(full, e):
                    continue
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                else:
                    os.unlink(full)
        for e in entries:
            full = os.path.join(final, e['path'])
            if not os.path.lexists(full):
                self.place(final, e, link_from_store=True)

    # --- rotation -------------------------------------------------------------------------------

    def rotate(self):
        owned, foreign = [], []
        now = time.time()
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.name == STORE:
                continue
            if entry.name.startswith(BUILD_PREFIX) and entry.is_dir(follow_symlinks=False):
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_BUILD_SECONDS:
                    shutil.rmtree(entry.path, ignore_errors=True)
                continue
            if entry.is_dir(follow_symlinks=False) and is_own(entry.path, entry.name, self.p):
                m = read_manifest(entry.path, self.p['marker'])
                owned.append((str(m.get('created', '')), entry.name))
            else:
                foreign.append(entry.name)
        others = sorted((o for o in owned if o[1] != self.p['release']), reverse=True)
        deleted = [name for _created, name in others[max(self.p['keep'] - 1, 0) :]]
        for name in deleted:
            shutil.rmtree(os.path.join(self.root, name))
        # Contents no release links to any more: only the store's own link is left.
        for entry in os.scandir(self.store):
            if not entry.name.startswith('.') and entry.stat(follow_symlinks=False).st_nlink == 1:
                os.unlink(entry.path)
        return deleted, foreign

    # --- the whole call ---------------------------------------------------------------------------

    def run(self):
        p = self.p
        entries = p['entries']
        final = os.path.join(self.root, p['release'])
        files = sum(1 for e in entries if e['type'] == 'file')
        result = dict(changed=False, missing=[], files=files, new=0, created=False, deleted=[], foreign=[], temporary=False, path=final)

        if p['backup_check']:
            result['backup_check'] = self.check_backup_dir()
            result['changed'] = result['backup_check']['created']
        if p['read_only']:
            return self.run_read_only(final, entries, result)

        self.owner.make_dir(self.root, parents=True)
        self.owner.make_dir(self.store)
        with open(os.path.join(self.store, '.lock'), 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result['missing'] = self.missing(entries)
            if result['missing']:
                return result
            if os.path.lexists(final):
                if not (os.path.isdir(final) and not os.path.islink(final) and is_own(final, p['release'], p)):
                    raise Refusal(
                        '%s exists but was not made by this tool for %s on this cluster (no manifest %s naming it); '
                        'nothing was changed. Move it away, or set db_deploy_release_id to another name' % (final, p['database'], p['marker'])
                    )
                self.reconcile(final, entries)
            else:
                self.create(final, entries)
                result['created'] = True
            result['deleted'], result['foreign'] = self.rotate()
        result['new'] = self.new
        result['notice'] = notice(p, result['deleted'], result['foreign'])
        # Only contents new to the host change its state; a release directory of contents it
        # already had, and the rotation of old ones, are the tool's bookkeeping.
        result['changed'] = self.new > 0 or result['changed']
        return result

    def check_backup_dir(self):
        p, c = self.p, self.p['backup_check']
        problem, facts = backup_check.check(
            p['backup_dir'],
            c['database'],
            'pg_dump',
            c.get('pg_bin_dir') or '',
            int(c['server_major']),
            c['server_version'],
            int(c['db_size']),
            float(c['space_factor']),
            p['owner'],
            c.get('host') or '',
            check_mode=p['read_only'],
        )
        created = problem is None and not facts['exists'] and not p['read_only']
        if created:
            backup_check.make_directory(p['backup_dir'], p['owner'])
        return dict(problem=problem, pg_bin=facts['pg_bin'], version=facts['version'], created=created)

    def run_read_only(self, final, entries, result):
        if os.path.isdir(final) and is_own(final, self.p['release'], self.p) and tree_matches(final, entries, self.p['marker']):
            return result
        result['missing'] = self.missing(entries)
        if result['missing']:
            return result
        directory = tempfile.mkdtemp(prefix='db-deploy-check-')
        try:
            os.chmod(directory, 0o750)
            self.owner.own(directory)
            self.build(directory, entries, link_from_store=False)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        result.update(path=directory, temporary=True)
        return result


def notice(p, deleted, foreign):
    """What rotation removed and what it left alone, for people (the db_deploy callback prints it)."""
    text = ''
    if deleted:
        text += 'Removed old releases of %s: %s. ' % (p['database'], ', '.join(deleted))
    if foreign:
        text += (
            'Left alone in %s: %s. Cleanup deletes only release directories whose manifest names %s on this '
            'cluster; remove these by hand if they are not needed.' % (p['root'], ', '.join(foreign), p['database'])
        )
    return text.strip()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type='path', required=True),
            release=dict(type='str'),
            entries=dict(type='list', elements='dict'),
            # The action plugin's own arguments: here only when it was not loaded.
            src=dict(type='str'),
            release_id=dict(type='str'),
            max_file_size=dict(type='int'),
            contents=dict(type='dict', default={}),
            read_only=dict(type='bool', default=False),
            keep=dict(type='int', default=5),
            owner=dict(type='str', default=''),
            database=dict(type='str', required=True),
            system_identifier=dict(type='str', required=True),
            tool=dict(type='str', default='db_deploy'),
            marker=dict(type='str', default='.db-deploy-release.json'),
            backup_dir=dict(type='path', default=''),
            backup_check=dict(type='dict', default={}),
        ),
        # Check mode is the caller's read_only: the status play reads without being in check mode.
        supports_check_mode=True,
    )
    if module.params['src'] is not None or module.params['entries'] is None:
        module.fail_json(
            msg='db_deploy_release ran without its action plugin, which reads the migration files on '
            'the controller: add the plugins/action directory of this repository to action_plugins '
            '(ansible.cfg) and run again. Nothing was shipped.'
        )
    release = module.params['release'] or ''
    if not release or release in ('.', '..') or '/' in release or release.startswith('.'):
        module.fail_json(msg='release %r is not a directory name' % release)
    try:
        module.exit_json(**Release(module).run())
    except Refusal as e:
        module.fail_json(msg=str(e))
    except OSError as e:
        module.fail_json(
            msg='shipping the migration files failed: %s%s. Nothing was applied.' % (e.strerror or e, (' (%s)' % e.filename) if e.filename else '')
        )


if __name__ == '__main__':
    main()
