// A UTF-8 byte-order mark opening a text file is not part of its text: editors and tools add
// it (Notepad, Python's utf-8-sig, PowerShell), and JSON, .env and CSV readers would take it
// for the first key's or the first field's first character.
export const withoutBom = (text: string): string => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
