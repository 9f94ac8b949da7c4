-- jsonb documents, one of them nullable (psql -v rows=N). Deterministic.
CREATE TABLE public.documents (id bigint PRIMARY KEY, body jsonb NOT NULL, extra jsonb);
INSERT INTO public.documents
SELECT i,
       jsonb_build_object(
           'title', 'Document ' || i, 'tags', jsonb_build_array('t' || (i % 17), 't' || (i % 23)),
           'author', jsonb_build_object('id', i % 1000, 'name', 'Author ' || (i % 1000)),
           'stats', jsonb_build_object('views', i * 13 % 100000, 'score', (i % 1000) / 10.0),
           'body', repeat(md5(i::text), 3)),
       CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN 'null'::jsonb
            ELSE jsonb_build_object('flag', i % 2 = 0, 'note', E'line\nbreak "' || i || '"') END
FROM generate_series(1, :rows) AS i;
