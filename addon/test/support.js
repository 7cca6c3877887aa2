'use strict';
// Shared by the addon tests: the built addon, a root check, and small file helpers.
// (Not a test file itself; node --test loads it as one and finds nothing to run.)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const addon = require(path.join(__dirname, '..', 'build', 'Release', 'berth.node'));

const isRoot = process.getuid() === 0;

/** The text of a file, trimmed; undefined when it does not exist. */
function read(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** A fresh temporary directory on the real disk (overlayfs wants one that supports xattrs). */
function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Mount points currently listed in /proc/self/mountinfo. */
function mountPoints() {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

/** Linux's encoding of st_rdev (glibc gnu_dev_major/minor). */
function devMajor(rdev) {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev) {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

module.exports = { addon, isRoot, read, write, tempDir, mountPoints, devMajor, devMinor };
