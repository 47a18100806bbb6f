// What a failed verb prints: one line for what was called failing (the S3 store's refusal, a
// network that did not carry the call), the stack only for a bug in Switchyard.
import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { describeError, UserError } from '../../scripts/lib/ui/errors.js';

const AGAIN = 'run the same command again once it answers (a run resumes from its last committed checkpoint)';

describe('a failed verb says', () => {
  it("the S3 store's refusal in one line, with its status and name, and no stack", () => {
    const refused = new S3ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: 'We encountered an internal error. Please try again.' });
    expect(describeError(refused)).toEqual({ line: `the S3 store answered 500 InternalError: We encountered an internal error. Please try again.; ${AGAIN}`, code: 1 });
  });

  it('a network that did not carry the call in one line', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port: 9000 });
    expect(describeError(refused)).toEqual({ line: `network: connect ECONNREFUSED 127.0.0.1:9000; ${AGAIN}`, code: 1 });
  });

  it('a bug in Switchyard as an internal error, with its stack', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'n')");
    expect(describeError(bug)).toMatchObject({ line: "internal error: Cannot read properties of undefined (reading 'n')", code: 70, stack: bug.stack });
    expect(describeError(new UserError('spec: train: required'))).toEqual({ line: 'spec: train: required', code: 1 });
  });
});
