// AppArmor (daemon/containers/apparmor.ts). This machine's kernel has no AppArmor, so what is tested is
// what berthd decides and writes: whether it uses AppArmor for a host state, the profile text it loads
// (checked by apparmor_parser when the package is installed), and the profile each container gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { appArmorDecision, appArmorProfileText, appArmorProfileFor, profileLoaded, AppArmor, DEFAULT_APPARMOR_PROFILE } from '../../daemon/containers/apparmor';

test('used only with the module on and apparmor_parser installed', () => {
  assert.equal(appArmorDecision({}).use, false);
  assert.match(appArmorDecision({}).reason, /no AppArmor/);
  assert.equal(appArmorDecision({ enabled: 'N\n', parser: '/sbin/apparmor_parser' }).use, false);
  assert.equal(appArmorDecision({ enabled: 'Y\n' }).use, false);
  assert.match(appArmorDecision({ enabled: 'Y\n' }).reason, /apparmor_parser is not installed/);
  assert.equal(appArmorDecision({ enabled: 'Y\n', parser: '/sbin/apparmor_parser' }).use, true);
  // Debian's kernels have AppArmor on; a boot that never mounted securityfs has no interface to load into
  // (the VM guests' plain init): such a host counts as one without AppArmor, as dockerd counts it.
  assert.equal(appArmorDecision({ enabled: 'Y\n', parser: '/sbin/apparmor_parser', securityfs: false }).use, false);
  assert.match(appArmorDecision({ enabled: 'Y\n', parser: '/sbin/apparmor_parser', securityfs: false }).reason, /securityfs/);
  assert.equal(appArmorDecision({ enabled: 'Y\n', parser: '/sbin/apparmor_parser', securityfs: true }).use, true);
  // This host: no /sys/module/apparmor, so a berthd here applies nothing.
  if (!existsSync('/sys/module/apparmor/parameters/enabled')) assert.equal(new AppArmor('/nonexistent').used, false);
});

test('the profile has docker-default\'s rules under its own name', () => {
  const text = appArmorProfileText();
  assert.match(text, /^#include <tunables\/global>$/m);
  assert.match(text, /^profile berth-default flags=\(attach_disconnected,mediate_deleted\) \{$/m);
  for (const rule of [
    'network,', 'capability,', 'file,', 'umount,', 'deny mount,',
    'deny @{PROC}/* w,', 'deny @{PROC}/sys/[^k]** w,', 'deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,',
    'deny @{PROC}/sysrq-trigger rwklx,', 'deny @{PROC}/kcore rwklx,',
    'deny /sys/[^f]*/** wklx,', 'deny /sys/fs/cg[^r]*/** wklx,', 'deny /sys/firmware/** rwklx,',
    'deny /sys/devices/virtual/powercap/** rwklx,', 'deny /sys/kernel/security/** rwklx,',
    'signal (receive) peer=unconfined,', 'signal (send,receive) peer=berth-default,',
    'ptrace (trace,read,tracedby,readby) peer=berth-default,',
  ]) assert.ok(text.split('\n').some((l) => l.trim() === rule), `rule ${rule}`);
  // A confined berthd's own profile may signal its containers.
  assert.match(appArmorProfileText('x', 'berthd-prof'), /signal \(receive\) peer=berthd-prof,/);
  // Balanced braces: one profile block.
  assert.equal((text.match(/\{/g) ?? []).length - (text.match(/\}/g) ?? []).length, 0);
  // Where the parser is installed, it must take the text (-Q: parse only, load nothing).
  const parser = ['/sbin/apparmor_parser', '/usr/sbin/apparmor_parser'].find((p) => existsSync(p));
  if (parser && existsSync('/etc/apparmor.d/tunables/global')) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-aa-'));
    try {
      writeFileSync(path.join(dir, 'p'), text);
      execFileSync(parser, ['-Q', '-K', path.join(dir, 'p')], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('each container\'s profile: --security-opt first, then unconfined for --privileged, else the default', () => {
  assert.equal(appArmorProfileFor({}, true), DEFAULT_APPARMOR_PROFILE);
  assert.equal(appArmorProfileFor({ Privileged: true }, true), 'unconfined');
  assert.equal(appArmorProfileFor({ SecurityOpt: ['apparmor=my-prof'] }, true), 'my-prof');
  assert.equal(appArmorProfileFor({ SecurityOpt: ['apparmor:unconfined', 'no-new-privileges'] }, true), 'unconfined');
  assert.equal(appArmorProfileFor({ SecurityOpt: ['apparmor=my-prof'], Privileged: true }, true), 'my-prof');
  // Without AppArmor nothing is applied; inspect shows only what was asked for (as Docker).
  assert.equal(appArmorProfileFor({}, false), '');
  assert.equal(appArmorProfileFor({ Privileged: true }, false), '');
  assert.equal(appArmorProfileFor({ SecurityOpt: ['apparmor=my-prof'] }, false), 'my-prof');
});

test('a loaded profile is found in the kernel\'s list', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-aa-'));
  try {
    const f = path.join(dir, 'profiles');
    writeFileSync(f, 'unconfined-thing (unconfined)\nberth-default (enforce)\n/usr/bin/x (complain)\n');
    assert.equal(profileLoaded('berth-default', f), true);
    assert.equal(profileLoaded('berth', f), false);
    assert.equal(profileLoaded('berth-default', path.join(dir, 'missing')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
