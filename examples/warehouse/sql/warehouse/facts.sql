-- Built from {{ stage_users.target_table }} and {{ stage_orders.target_table }}
CREATE OR REPLACE TABLE {{ target_table }} AS
SELECT u.user_id, u.country, COUNT(o.order_id) AS orders, SUM(o.amount) AS revenue
FROM {{ stage_users.target_table }} u
LEFT JOIN {{ stage_orders.target_table }} o USING (user_id)
GROUP BY u.user_id, u.country
