CREATE OR REPLACE TABLE {{ target_table }} AS
SELECT order_id, user_id, amount, status, created_at
FROM source.orders
WHERE created_at > DATE_SUB(CURRENT_DATE(), INTERVAL {{ days_back }} DAY)
  AND status IN ({% for s in statuses %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
