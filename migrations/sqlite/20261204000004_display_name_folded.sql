-- Case-folded display names for search: NFC, then Unicode lowercase, written
-- by the server on every insert. SQLite's LOWER() folds only ASCII letters,
-- so existing rows cannot be filled here; the server fills every NULL row
-- right after migrating. NOCASE lets SQLite use the index for `LIKE 'x%'`,
-- and changes nothing else because the stored text is already lowercase.
ALTER TABLE users ADD COLUMN display_name_folded TEXT COLLATE NOCASE;
CREATE INDEX users_display_name_folded ON users (display_name_folded);
