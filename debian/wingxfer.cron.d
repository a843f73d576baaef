# /etc/cron.d/wingxfer: the wingxfer watchdog every minute (ends stuck
# transfers, redelivers panel callbacks, removes stale staging data).  Silent
# unless it acted.  Under systemd wingxfer-watchdog.timer does this, and while
# the timer is active this line stands down.  Both need
# /etc/wingxfer/config.yml (link it to the node's Wings config.yml).
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
* * * * * root [ -e /etc/wingxfer/config.yml ] && [ -x /usr/sbin/wingxfer-watchdog ] && { systemctl is-active --quiet wingxfer-watchdog.timer 2>/dev/null || wingxfer-watchdog; }
