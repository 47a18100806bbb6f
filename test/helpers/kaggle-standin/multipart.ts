// The text fields of a multipart/form-data body, as kagglesdk sends its submission forms.
export function formFields(contentType: string | undefined, body: Buffer): Record<string, string> | null {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType ?? '')?.[1];
  if (!contentType?.startsWith('multipart/form-data') || !boundary) return null;
  const fields: Record<string, string> = {};
  const parts = body.toString('latin1').split(`--${boundary}`);
  for (const part of parts.slice(1)) {
    if (part.startsWith('--')) break; // the closing delimiter
    const split = part.indexOf('\r\n\r\n');
    if (split === -1) return null;
    const name = /name="([^"]*)"/i.exec(part.slice(0, split))?.[1];
    if (name === undefined) return null;
    fields[name] = Buffer.from(part.slice(split + 4).replace(/\r\n$/, ''), 'latin1').toString('utf8');
  }
  return fields;
}
