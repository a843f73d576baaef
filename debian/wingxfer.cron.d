# /etc/cron.d/wingxfer: the wingxfer watchdog every minute (ends stuck
# transfers, redelivers panel callbacks, removes stale staging data).  Silent
# unless it acted.  Under systemd the wingxfer-watchdog.timer does this
# instead, so this line does nothing there.  Both need
# /etc/wingxfer/config.yml (link it to the node's Wings config.yml).
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
* * * * * root [ ! -d /run/systemd/system ] && [ -e /etc/wingxfer/config.yml ] && [ -x /usr/sbin/wingxfer-watchdog ] && wingxfer-watchdog
