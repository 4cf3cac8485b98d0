-- Case-folded display names for search: NFC, then Unicode lowercase, written
-- by the server on every insert. PostgreSQL's lower() depends on the
-- database's locale (ASCII only under "C"), so existing rows are filled by
-- the server right after migrating, with the same Rust function as inserts.
-- `text_pattern_ops` lets the index serve `LIKE 'x%'` under any collation.
ALTER TABLE users ADD COLUMN display_name_folded TEXT;
CREATE INDEX users_display_name_folded ON users (display_name_folded text_pattern_ops);
