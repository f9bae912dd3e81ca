// hubtest.mjs ENDPOINT REPO EXPECT_DIR
//
// Checks a Shoal node's Hugging Face Hub-compatible endpoint with the real
// @huggingface/hub client (the version pinned in package.json): the repo's
// listing and files must equal the folder EXPECT_DIR byte for byte, and
// snapshotDownload and downloadFileToCacheDir must leave a valid Hugging
// Face cache (refs/main → commit, snapshots/<commit>/<path> symlinks into
// blobs/<sha256>). Prints one line per check, then "N passed, M failed";
// exits 1 if a check failed, 2 on bad usage or when the time runs out.
import { createHash } from "node:crypto";
import { lstat, mkdtemp, readFile, readdir, readlink, realpath, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import {
  downloadFile,
  downloadFileToCacheDir,
  fileExists,
  listFiles,
  modelInfo,
  snapshotDownload,
} from "@huggingface/hub";

const TIME_LIMIT_MS = Number(process.env.HUBTEST_TIMEOUT_MS ?? 300_000);

const [endpoint, repo, expectDir] = process.argv.slice(2);
if (!endpoint || !repo || !expectDir) {
  console.error("usage: node hubtest.mjs ENDPOINT REPO EXPECT_DIR");
  process.exit(2);
}
const hubUrl = endpoint.replace(/\/+$/, "");

// The client narrates each download with console.debug; keep the output
// to one line per check unless asked.
if (!process.env.HUBTEST_VERBOSE) {
  console.debug = () => {};
}

const timer = setTimeout(() => {
  console.log(`FAIL time limit of ${TIME_LIMIT_MS} ms reached`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(2);
}, TIME_LIMIT_MS);
timer.unref();

let passed = 0;
let failed = 0;

// check runs one named check: ok when fn returns without throwing.
async function check(name, fn) {
  try {
    const note = await fn();
    passed++;
    console.log(`ok   ${name}${note ? ` (${note})` : ""}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.message ?? err}`);
  }
}

function assert(cond, msg) {
  if (!cond) {
    throw new Error(msg);
  }
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

// expected: every regular file under EXPECT_DIR by slash path, with its bytes.
async function walk(dir, prefix = "") {
  const out = new Map();
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isDirectory()) {
      if (d.name === ".git" || d.name === ".shoal-fetch") continue;
      for (const [k, v] of await walk(join(dir, d.name), rel)) out.set(k, v);
    } else if (d.isFile() || d.isSymbolicLink()) {
      out.set(rel, await readFile(join(dir, d.name)));
    }
  }
  return out;
}

const expected = await walk(resolve(expectDir));
const paths = [...expected.keys()].sort();
const [org, name] = repo.split("/");
const folderName = `models--${org}--${name}`;
let commit;

// checkCacheFile checks that pointer (a path in a snapshot) is a relative
// symlink to blobs/<sha256 of the file> of storage, holding its bytes.
async function checkCacheFile(storage, pointer, path) {
  const want = expected.get(path);
  const st = await lstat(pointer);
  assert(st.isSymbolicLink(), `${path}: not a symlink in the snapshot`);
  const target = await readlink(pointer);
  assert(!target.startsWith("/"), `${path}: absolute symlink ${target}`);
  const blob = join(storage, "blobs", sha256(want));
  assert(resolve(dirname(pointer), target) === blob, `${path}: links to ${target}, want the blob ${relative(dirname(pointer), blob)}`);
  const got = await readFile(pointer);
  assert(Buffer.compare(got, want) === 0, `${path}: ${got.length} bytes differ from the expected ${want.length}`);
}

await check("modelInfo reports a 40-hex commit", async () => {
  const info = await modelInfo({ name: repo, hubUrl, additionalFields: ["sha"] });
  commit = info.sha;
  assert(/^[0-9a-f]{40}$/.test(commit ?? ""), `sha ${commit}`);
  assert(info.name === repo, `name ${info.name}`);
  return commit;
});

await check("listFiles lists the expected files and sizes", async () => {
  const got = new Map();
  const dirs = new Set();
  for await (const e of listFiles({ repo, hubUrl, recursive: true })) {
    if (e.type === "file") {
      assert(!got.has(e.path), `${e.path} listed twice`);
      got.set(e.path, e.size);
      assert(e.lfs?.oid === sha256(expected.get(e.path) ?? Buffer.alloc(0)), `${e.path}: lfs.oid ${e.lfs?.oid}`);
      assert(!("xetHash" in e), `${e.path}: xetHash`);
    } else {
      assert(e.type === "directory", `${e.path}: type ${e.type}`);
      dirs.add(e.path);
    }
  }
  const gotPaths = [...got.keys()].sort();
  assert(JSON.stringify(gotPaths) === JSON.stringify(paths), `paths ${JSON.stringify(gotPaths)}, want ${JSON.stringify(paths)}`);
  for (const p of paths) {
    assert(got.get(p) === expected.get(p).length, `${p}: size ${got.get(p)}, want ${expected.get(p).length}`);
    for (let d = dirname(p); d !== "."; d = dirname(d)) {
      assert(dirs.has(d), `folder ${d} of ${p} not listed`);
    }
  }
  return `${got.size} files, ${dirs.size} folders`;
});

for (const p of paths) {
  await check(`downloadFile ${p}`, async () => {
    const blob = await downloadFile({ repo, path: p, hubUrl });
    assert(blob, "no such file");
    const got = Buffer.from(await blob.arrayBuffer());
    const want = expected.get(p);
    assert(Buffer.compare(got, want) === 0, `${got.length} bytes differ from the expected ${want.length}`);
    return `${want.length} bytes`;
  });
}

await check("downloadFile of a missing file is null", async () => {
  const blob = await downloadFile({ repo, path: "no/such/file.bin", hubUrl });
  assert(blob === null, "got a blob");
});

await check("fileExists", async () => {
  assert(await fileExists({ repo, path: paths[0], hubUrl }), `${paths[0]} said missing`);
  assert(!(await fileExists({ repo, path: "no/such/file.bin", hubUrl })), "a missing file said present");
});

const cacheDir = await mkdtemp(join(tmpdir(), "shoal-hubtest-"));
try {
  await check("snapshotDownload makes a valid cache", async () => {
    const snap = await snapshotDownload({ repo, cacheDir, hubUrl });
    const storage = join(cacheDir, folderName);
    const ref = (await readFile(join(storage, "refs", "main"), "utf8")).trim();
    assert(ref === commit, `refs/main holds ${ref}, want ${commit}`);
    assert(resolve(snap) === join(storage, "snapshots", commit), `snapshot folder ${snap}`);
    for (const p of paths) {
      await checkCacheFile(storage, join(snap, ...p.split("/")), p);
    }
    const blobs = (await readdir(join(storage, "blobs"))).sort();
    const want = [...new Set(paths.map((p) => sha256(expected.get(p))))].sort();
    assert(JSON.stringify(blobs) === JSON.stringify(want), `blobs ${blobs.join(" ")}, want ${want.join(" ")}`);
    return `${paths.length} files in ${relative(cacheDir, snap)}`;
  });

  await check("snapshotDownload again downloads nothing new", async () => {
    const storage = join(cacheDir, folderName);
    const before = (await stat(join(storage, "blobs", sha256(expected.get(paths[0]))))).mtimeMs;
    await snapshotDownload({ repo, cacheDir, hubUrl });
    const after = (await stat(join(storage, "blobs", sha256(expected.get(paths[0]))))).mtimeMs;
    assert(before === after, "a blob was written again");
  });

  await check("downloadFileToCacheDir", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "shoal-hubtest-"));
    try {
      // The deepest file: its pointer sits in a nested snapshot folder.
      const p = [...paths].sort((a, b) => b.split("/").length - a.split("/").length)[0];
      const pointer = await downloadFileToCacheDir({ repo, path: p, cacheDir: dir2, hubUrl });
      const storage = join(dir2, folderName);
      const want = join(storage, "snapshots", commit, ...p.split("/"));
      assert(resolve(pointer) === want, `pointer ${pointer}, want ${want}`);
      await checkCacheFile(storage, pointer, p);
      assert((await realpath(pointer)).startsWith(join(await realpath(storage), "blobs") + sep), "pointer does not lead into blobs");
      return p;
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });
} finally {
  await rm(cacheDir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
