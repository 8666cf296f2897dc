DROP TABLE IF EXISTS {{ target_table }};
CREATE TABLE {{ target_table }} AS
SELECT CAST(order_id AS INTEGER) AS order_id, CAST(user_id AS INTEGER) AS user_id,
       CAST(amount AS NUMERIC) AS amount, status, created_at
FROM source_orders
WHERE created_at > {{ date_sub(as_of, days_back) }}
  AND status IN ({% for s in statuses %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
