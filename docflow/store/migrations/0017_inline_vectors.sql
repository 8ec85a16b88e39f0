-- Vectors kept in the chunk's row rather than in TOAST (search at scale, issue 21): pgvector declares its type
-- EXTERNAL, so a 384-d vector (1.5 kB) pushed the row past the 2 kB TOAST threshold and went out of line, and
-- every distance an exact search computes (store/search.py, selective filters) fetched it through the TOAST
-- index first. MAIN keeps it inline and moves the text search vector (tsv) out instead, which only the
-- lexical ranking's few hundred rows read; a vector too large for a page still goes out of line. Applies to
-- rows written from now on.
ALTER TABLE docflow.chunks ALTER COLUMN embedding SET STORAGE MAIN;
