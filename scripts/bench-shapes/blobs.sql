-- bytea blobs of 8-64 KB, incompressible like images (psql -v rows=N). Deterministic: SHA-256 chains.
CREATE TABLE public.blobs (id bigint PRIMARY KEY, name text NOT NULL, content_type text, data bytea NOT NULL);
INSERT INTO public.blobs
SELECT i, 'file-' || i || '.bin', 'application/octet-stream',
       (SELECT string_agg(sha256(((i * 4096 + j)::text)::bytea), ''::bytea ORDER BY j)
        FROM generate_series(1, 256 + (i * 7919) % 1793) AS j)
FROM generate_series(1, :rows) AS i;
