DROP TABLE IF EXISTS {{ target_table }};
CREATE TABLE {{ target_table }} AS
SELECT CAST(user_id AS INTEGER) AS user_id, name, country, updated_at
FROM source_users
WHERE updated_at > {{ date_sub(as_of, days_back) }}
  AND status = '{{ status }}'
