-- events: bigint key, uuid, int, text, a ~200-byte jsonb document, timestamptz, text[] (psql -v rows=N).
CREATE TABLE public.events (
    id bigint PRIMARY KEY, user_id uuid NOT NULL, kind int NOT NULL, name text NOT NULL, payload jsonb,
    created_at timestamptz NOT NULL, tags text[]
);
INSERT INTO public.events
SELECT i, md5((i % 50000)::text)::uuid, i % 12, (ARRAY['page_view', 'click', 'signup', 'purchase'])[1 + i % 4],
       jsonb_build_object('path', '/products/' || (i % 5000), 'referrer', 'https://example.com/' || md5(i::text),
                          'ms', i % 3000, 'ab', (i % 2 = 0), 'ua', 'Mozilla/5.0 (X11; Linux x86_64) ' || (i % 97)),
       timestamptz '2025-01-01 00:00:00+00' + i * interval '250 milliseconds',
       ARRAY['web', 'v' || (i % 4)]
FROM generate_series(1, :rows) AS i;
