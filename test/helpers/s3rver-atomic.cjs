// s3rver with objects stored the way S3 stores them: whole, or not at all. s3rver answers a PUT
// once the body has streamed through its hash, before its file is written (and it truncates
// the old file first), so a read right after a PUT, or one during it, could see an empty or cut
// object. Here each object's bytes and metadata go to temp files that are renamed into place
// once written, before the PUT is answered. Started by test/helpers/s3rver.ts in place of s3rver's
// own bin, with the same arguments.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { pipeline, Transform } = require('stream');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');

const tmpName = (file) => `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;

async function writeAtomically(file, write) {
  const tmp = tmpName(file);
  try {
    await write(tmp);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

FilesystemStore.prototype.putMetadata = async function (bucket, key, metadata, md5) {
  const json = {};
  for (const [k, v] of Object.entries(metadata)) if (S3Object.ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-')) json[k] = v;
  if (md5) await writeAtomically(this.getResourcePath(bucket, key, 'object.md5'), (tmp) => fs.promises.writeFile(tmp, md5));
  await writeAtomically(this.getResourcePath(bucket, key, 'metadata.json'), (tmp) => fs.promises.writeFile(tmp, JSON.stringify(json, null, 2)));
};

FilesystemStore.prototype.putObject = async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const md5 = crypto.createHash('md5');
  let size = 0;
  await writeAtomically(objectPath, (tmp) =>
    Buffer.isBuffer(object.content)
      ? (md5.update(object.content), (size = object.content.length), fs.promises.writeFile(tmp, object.content))
      : new Promise((resolve, reject) =>
          pipeline(
            object.content,
            new Transform({
              transform(chunk, _enc, done) {
                md5.update(chunk);
                size += chunk.length;
                done(null, chunk);
              },
            }),
            fs.createWriteStream(tmp),
            (err) => (err ? reject(err) : resolve()),
          ),
        ),
  );
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

require('s3rver/bin/s3rver.js');
