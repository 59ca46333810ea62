"""Smaregi (スマレジ), the leading Japanese cloud POS, through its Platform API.

``settings`` (a connection's settings), ``client`` (token, paging, retries), ``mapping``
(会員 and 取引 to omnicrm records), ``webhooks`` (pos:customers, pos:transactions),
``channel`` (the channel type and the two stream readers) and ``sandbox`` (a loopback
emulator for the demo and the tests).

Sources for the API's shape (there is no Smaregi schema in the shared reference):
the Platform API reference at developers.smaregi.dev (GET /transactions: the
``transaction_date_time``/``upd_date_time`` ``-from``/``-to`` ranges of at most 31 days,
``transactionDateTime`` being when the server received a sale and
``terminalTranDateTime`` when it was made, the ``sort`` fields; POST /transactions: the
head and detail fields, ``transactionHeadDivision`` and ``cancelDivision`` codes), the
POS API overview at www1-dev.smaregi.jp/apidoc (base ``https://api.smaregi.jp/{契約ID}/pos``,
``limit`` 1..1000 and ``page`` from 1), and the customer model of the OpenAPI client in
github.com/feedforce/smaregi-platform-api (customerCode, lastKana, mobileNumber,
mailAddress, birthDate, point, status, updDateTime, ...).
"""
