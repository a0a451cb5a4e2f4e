// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";

/// @title Market escrow
/// @notice What every market shares: the AID token it escrows and the ModelRegistry it prices and
/// publishes against. It is the one place where AID enters a market (_collect) and leaves it
/// (_pay), as OpenZeppelin routes every balance change of an ERC-20 through ERC20._update: a
/// market's code moves AID only through these two functions, so what a market holds is the sum of
/// what it collected minus what it paid.
/// @dev Callers keep checks-effects-interactions: they write their state and emit their events
/// before they call _collect or _pay, which call the token.
abstract contract MarketEscrow {
    using SafeERC20 for IERC20;

    /// @notice The AID token escrowed and paid out.
    IERC20 public immutable token;
    /// @notice The ModelRegistry: where model terms and base models come from, and where ratings
    /// and trained models go.
    IModelRegistry public immutable models;

    constructor(IERC20 aidToken, IModelRegistry modelRegistry) {
        token = aidToken;
        models = modelRegistry;
    }

    /// @dev Pulls `amount` AID from `from` into escrow (`from` approved it, or permitted it with
    /// _permit). Moves nothing for 0.
    function _collect(address from, uint256 amount) internal {
        if (amount != 0) token.safeTransferFrom(from, address(this), amount);
    }

    /// @dev Pays `amount` AID out of escrow to `to`. Moves nothing for 0.
    function _pay(address to, uint256 amount) internal {
        if (amount != 0) token.safeTransfer(to, amount);
    }

    /// @dev Submits `owner`'s ERC-2612 permit for this market. A permit can be front-run by anyone
    /// who copies it from the mempool; that spends the nonce but sets the same allowance, so a
    /// failed permit is ignored and the _collect that follows decides (as OpenZeppelin recommends
    /// for permit consumers).
    function _permit(address owner, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) internal {
        try IERC20Permit(address(token)).permit(owner, address(this), value, deadline, v, r, s) {} catch {}
    }
}
