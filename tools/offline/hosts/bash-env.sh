# Sourced by every bash the simulation starts: sleeping advances the clock bash deadlines read,
# so a poll that would wait minutes on a node takes no time here.
sleep() { SECONDS=$((SECONDS + ${1%s})); }
hostname() { printf "%s\n" "${SIM_HOSTNAME:-sim}"; }
